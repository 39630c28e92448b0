"""Archives: safe extraction (nothing may leave the destination) and deterministic packaging."""

from __future__ import annotations

import gzip
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from wasmbuild.errors import ArchiveError


def _check_member(member: tarfile.TarInfo, name: str, label: str) -> None:
    if name.startswith("/") or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{label}: refusing absolute path {member.name!r}")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise ArchiveError(f"{label}: refusing path with '..': {member.name!r}")
    if member.isdev() or member.isfifo():
        raise ArchiveError(f"{label}: refusing special file {member.name!r}")
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            raise ArchiveError(f"{label}: refusing symlink {member.name!r} -> absolute {target!r}")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            raise ArchiveError(f"{label}: refusing symlink {member.name!r} -> {target!r} (leaves the tree)")
    if member.islnk():
        target = posixpath.normpath(member.linkname)
        if target.startswith(("/", "../")) or target == "..":
            raise ArchiveError(f"{label}: refusing hard link {member.name!r} -> {member.linkname!r}")


def _without_dot_slash(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name


def safe_extract(tar: tarfile.TarFile, dest: Path, *, strip_components: int = 0, label: str = "archive") -> None:
    """Extract `tar` into `dest`, refusing absolute paths, '..', special files and links leaving the tree."""
    dest.mkdir(parents=True, exist_ok=True)
    members = []
    for member in tar.getmembers():
        name = _without_dot_slash(member.name)
        if member.islnk():
            member.linkname = _without_dot_slash(member.linkname)
        if strip_components:
            parts = name.split("/")
            if len(parts) <= strip_components:
                continue
            name = "/".join(parts[strip_components:])
            if member.islnk():
                member.linkname = "/".join(member.linkname.split("/")[strip_components:])
        if not name or name == ".":
            continue
        _check_member(member, name, label)
        member.name = name
        members.append(member)
    try:
        tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:  # second line of defence
        raise ArchiveError(f"{label}: {exc}") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{label}: cannot extract: {exc}") from None


def extract_tarball(path: Path, dest: Path, *, strip_components: int = 0) -> None:
    try:
        with tarfile.open(path, "r:*") as tar:
            safe_extract(tar, dest, strip_components=strip_components, label=str(path))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{path}: not a readable tar archive: {exc}") from None


def _normalized_info(path: Path, arcname: str, mtime: int) -> tarfile.TarInfo:
    st = path.lstat()
    info = tarfile.TarInfo(arcname)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        info.mode = 0o777
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    else:
        raise ArchiveError(f"cannot package special file {path}")
    return info


def _walk_sorted(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def write_deterministic_tar_gz(out: Path, root: Path, prefix: str, mtime: int, first: Iterable[str] = ()) -> None:
    """Pack `root` as `prefix/...`: `first` members lead, then all paths sorted; fixed mtime, uid/gid 0,
    normalized modes, no pax timestamps, gzip header without name or time. Written to a temporary file
    and renamed, so a failure leaves nothing behind."""
    first = list(first)
    paths = [root / f for f in first]
    paths += sorted((p for p in _walk_sorted(root) if p.relative_to(root).as_posix() not in first),
                    key=lambda p: p.relative_to(root).as_posix())
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                   compresslevel=9) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_dir_info(prefix, mtime))
            for path in paths:
                arcname = f"{prefix}/{path.relative_to(root).as_posix()}"
                info = _normalized_info(path, arcname, mtime)
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _dir_info(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


