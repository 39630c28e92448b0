"""Archives: safe extraction (nothing may leave the destination) and deterministic packaging."""

from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from wasmbuild.errors import ArchiveError
from wasmbuild.files import atomic_open


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


# tarfile's "data" filter (PEP 706) arrived in 3.11.4 / 3.12; Debian 12's Python 3.11.2 lacks it. There, the
# member checks above are the defence, and _sanitize() applies what the filter would change (modes, owners).
HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
# Expansion limit: an archive may unpack to at most EXPANSION_RATIO times its own size (and always to
# EXPANSION_FLOOR bytes): real source and toolchain archives stay below 15x, a gzip bomb is refused unwritten.
EXPANSION_RATIO = 50
EXPANSION_FLOOR = 32 * 1024 * 1024


def expansion_limit(compressed_size: int) -> int:
    return max(EXPANSION_FLOOR, EXPANSION_RATIO * compressed_size)


def _sanitize(member: tarfile.TarInfo) -> None:
    """What the data filter changes: no setuid/setgid/sticky bits, no group/other write, owner can read (and
    write) regular files, and no ownership from the archive (extracting as root would chown to it)."""
    mode = member.mode & 0o755
    if member.isreg() or member.islnk():
        mode |= 0o600
    elif member.isdir():
        mode |= 0o700
    member.mode = mode
    member.uid, member.gid = os.getuid(), os.getgid()
    member.uname = member.gname = ""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check_resolved(member: tarfile.TarInfo, dest: Path, root: str, label: str) -> None:
    """What the data filter checks on disk: the member, and a link's target, resolved through the links already
    extracted, stay inside the destination (a lexically harmless 'x -> a/..' after 'a -> .' does not)."""
    full = os.path.join(dest, member.name)
    where = os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full))
    if not _inside(where, root):
        raise ArchiveError(f"{label}: {member.name!r} would be extracted outside the destination")
    if member.issym():
        target = os.path.realpath(os.path.join(os.path.dirname(where), member.linkname))
    elif member.islnk():
        target = os.path.realpath(os.path.join(dest, member.linkname))
    else:
        return
    if not _inside(target, root):
        raise ArchiveError(f"{label}: link {member.name!r} -> {member.linkname!r} points outside the destination")


def safe_extract(tar: tarfile.TarFile, dest: Path, *, strip_components: int = 0, label: str = "archive",
                 max_bytes: int | None = None) -> None:
    """Extract `tar` into `dest`, refusing absolute paths, '..', special files and links leaving the tree, and
    (with `max_bytes`) archives that would unpack to more than that: refused before anything is written."""
    dest.mkdir(parents=True, exist_ok=True)
    members = []
    total = 0
    try:
        for member in tar:
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
            total += member.size
            if max_bytes is not None and total > max_bytes:
                raise ArchiveError(f"{label}: refusing to unpack more than {max_bytes} bytes (an archive that "
                                   "expands this much is damaged or a decompression bomb)")
            members.append(member)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise ArchiveError(f"{label}: not a readable archive (truncated or corrupt?): {exc}") from None
    try:
        if HAS_DATA_FILTER:
            tar.extractall(dest, members=members, filter="data")
        else:
            root = os.path.realpath(dest)
            for member in members:  # one at a time: links made by earlier members are followed by the checks
                _sanitize(member)
                _check_resolved(member, dest, root, label)
                # The checks above are the defence here; a Python that has filters (the tests take this path on
                # every version) is told so, or 3.12+ warns that 3.14 will filter by default.
                if hasattr(tarfile, "fully_trusted_filter"):
                    tar.extract(member, dest, filter="fully_trusted")
                else:
                    tar.extract(member, dest)
    except getattr(tarfile, "FilterError", ()) as exc:  # second line of defence
        raise ArchiveError(f"{label}: {exc}") from None
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
        raise ArchiveError(f"{label}: cannot extract (truncated or corrupt?): {exc}") from None


def extract_tarball(path: Path, dest: Path, *, strip_components: int = 0) -> None:
    try:
        limit = expansion_limit(path.stat().st_size)
        with tarfile.open(path, "r:*") as tar:
            safe_extract(tar, dest, strip_components=strip_components, label=str(path), max_bytes=limit)
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError) as exc:
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
    with atomic_open(out) as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz, \
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


def _dir_info(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


