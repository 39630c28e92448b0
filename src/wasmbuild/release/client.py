"""`wasmbuild download`: the client of published releases, which fetches one artifact of a release, verifies it
and unpacks it.

A release location is a directory, local or at an http(s) base url, holding `release.json` (the index that
`nox -s release` writes: wasmbuild.release.index), `SHA256SUMS` and the archives. `download_release` checks, before
anything lands in the output directory:
  1. release.json parses and is a valid index of format 1 (`release.index.load_index`);
  2. the chosen archive's sha256 in the index is the one SHA256SUMS gives (and release.json's own, when
     listed: wasmbuild.release.sums);
  3. the archive's bytes have that sha256 and size (wasmbuild.download: retries, resumption of a transfer);
  4. its BUILD.json member has the index's `build_json_sha256` and names the entry's CPython version and triple,
     and every member lies under the one top directory `cpython-<version>-<triple>/`;
  5. it unpacks safely (wasmbuild.archive).
Every read is bounded: release.json and SHA256SUMS by a size limit and the downloader's throughput guard, archives
by their index size (at most release.index.MAX_ARTIFACT_SIZE); only the partial file of such a size-checked
archive stays in the cache after a failure, for the next run to resume.
Everything is assembled in a hidden staging directory inside the output directory and renamed into place at the
end; a failure while placing takes back what was placed: a failure leaves the output directory as it was.
Downloads into one output directory take turns (a lock on the directory itself) and each looks again once it
holds it, so concurrent ones all succeed. A tree already there counts only when its BUILD.json is the release's
and its python.wasm the one that record names; anything else in the way is refused, never overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tarfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.archive import expansion_limit, safe_extract
from wasmbuild.download import NotFound, download, read_url
from wasmbuild.errors import ArchiveError, ChecksumError, DownloadError, UsageError
from wasmbuild.record import RECORD_NAME
from wasmbuild.release.index import INDEX_HINT, INDEX_NAME, Entry, Index, load_index, version_key
from wasmbuild.release.sums import SUMS_NAME, parse_sums

MAX_INDEX_SIZE = 4 << 20  # bytes, for release.json and SHA256SUMS alike
MAX_RECORD_SIZE = 16 << 20  # bytes: a BUILD.json member larger than this is not one
# The key of the repository url in [project.urls] (pyproject.toml), read from the installed package's metadata.
REPOSITORY_LABEL = "Repository"
RELEASE_HINT = ("give --from URL or DIR: the base url of a release's files (e.g. "
                "https://github.com/OWNER/REPO/releases/download/TAG/) or a local directory holding release.json")

REQUESTED_RE = re.compile(r"^\d+\.\d+(?:\.\d+(?:(?:a|b|rc)\d+)?)?$")


# --- choosing an entry ----------------------------------------------------------------------------------------------


def _listing(index: Index) -> str:
    """What the index holds, e.g. `3.13.15 (wasi, emscripten), 3.11.2 (wasi)`, newest first."""
    by_version: dict[str, list[str]] = {}
    for e in sorted(index.artifacts, key=lambda e: version_key(e.python), reverse=True):
        by_version.setdefault(e.python, []).append(e.target)
    return ", ".join(f"{v} ({', '.join(t)})" for v, t in by_version.items()) or "nothing"


def check_requested(python: str | None) -> None:
    """A requested version is X.Y or X.Y.Z (or None); UsageError otherwise."""
    if python is not None and not REQUESTED_RE.match(python):
        raise UsageError(f"--python {python!r}: expected a CPython version such as 3.13 or 3.13.15")


def pick(index: Index, python: str | None, target: str, origin: str = "the release") -> Entry:
    """The entry for `target` and `python`: X.Y (its newest X.Y.Z), X.Y.Z (exactly), or None (the newest).
    UsageError naming what the index has when nothing matches."""
    check_requested(python)
    if not index.artifacts:
        raise UsageError(f"{origin} lists no artifacts")
    for_target = [e for e in index.artifacts if e.target == target]
    if python is None:
        matches = for_target
    elif python.count(".") == 1:
        matches = [e for e in for_target if ".".join(e.python.split(".")[:2]) == python]
    else:
        matches = [e for e in for_target if e.python == python]
    if not matches:
        what = f"CPython {python} for {target}" if python else f"artifact for {target}"
        raise UsageError(f"{origin} has no {what}", hint=f"it has: {_listing(index)}")
    return max(matches, key=lambda e: version_key(e.python))


def check_sums(sums: dict[str, str], files: list[tuple[str, str]], origin: str) -> None:
    """Each (file, sha256) the index gives must be what SHA256SUMS (at `origin`) lists. ChecksumError otherwise."""
    for name, digest in files:
        listed = sums.get(name)
        if listed is None:
            raise ChecksumError(f"{origin} does not list {name}, which the release index names",
                                hint="the release is incomplete or inconsistent (an interrupted upload?); "
                                "nothing was written")
        if listed != digest:
            raise ChecksumError(f"the release index and {origin} disagree about {name}:\n"
                                f"  release.json says {digest}\n  SHA256SUMS says   {listed}",
                                hint="the release is inconsistent (files replaced after publishing?); "
                                "nothing was written")


# --- locations ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """Where a release's files are: an http(s) base url ending in '/', or a local directory."""

    url: str | None = None
    directory: Path | None = None

    def __str__(self) -> str:
        return self.url if self.url is not None else str(self.directory)

    def locate(self, name: str) -> str:
        """The url (or path) of one of the location's files."""
        if self.url is not None:
            return self.url + urllib.parse.quote(name)
        assert self.directory is not None
        return str(self.directory / name)

    def read(self, name: str, limit: int = MAX_INDEX_SIZE) -> bytes:
        """A small file of the location, in memory; DownloadError (download.NotFound when missing)."""
        if self.url is not None:
            return read_url(self.locate(name), limit)
        path = Path(self.locate(name))
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
        except IsADirectoryError:
            raise DownloadError(f"{path}: a directory, not a file") from None
        except OSError as exc:
            raise DownloadError(f"{path}: cannot read: {exc.strerror or exc}") from None
        if len(data) > limit:
            raise DownloadError(f"{path}: more than {limit} bytes")
        return data

    def fetch(self, name: str, dest: Path, sha256: str, size: int, partial: Path | None) -> Path:
        """One archive of the location at `dest`, verified (wasmbuild.download); a transfer resumes from `partial`."""
        if self.url is not None:
            return download(self.locate(name), dest, sha256, size, partial=partial)
        return download(Path(self.locate(name)).as_uri(), dest, sha256, size)


def location_from(value: str) -> Location:
    """The location --from names: an http(s) url (of a directory) or a local directory (a path or a file url)."""
    try:
        parsed = urllib.parse.urlparse(value)
    except ValueError as exc:
        raise UsageError(f"--from {value}: not a valid url: {exc}") from None
    if parsed.scheme in ("http", "https"):
        if not parsed.netloc:
            raise UsageError(f"--from {value}: not a valid url (no host)", hint=RELEASE_HINT)
        return Location(url=value if value.endswith("/") else value + "/")
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise UsageError(f"--from {value}: unsupported url scheme {parsed.scheme!r}",
                         hint="give an http(s) url or a local directory")
    else:
        path = Path(value)
    path = path.expanduser().resolve()
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        raise UsageError(f"--from {path} {what}", hint="give the directory holding release.json, or an http(s) url")
    return Location(directory=path)


def repository_url() -> str | None:
    """The project's repository: the `Repository` entry of [project.urls] in pyproject.toml, as the installed
    package's metadata gives it (None when there is none, or wasmbuild is not installed)."""
    from importlib import metadata

    try:
        urls = metadata.metadata("wasmbuild").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for item in urls:
        label, _, url = item.partition(",")
        if re.sub(r"[^a-z]", "", label.lower()) == REPOSITORY_LABEL.lower() and url.strip():
            return url.strip()
    return None


def default_location(release: str | None) -> Location:
    """The project's own releases: `<repository>/releases/latest/download/`, or `.../releases/download/<TAG>/`."""
    repo = repository_url()
    if repo is None:
        raise UsageError("no release location configured: this wasmbuild names no repository (pyproject.toml's "
                         f"[project.urls] has no {REPOSITORY_LABEL} entry)", hint=RELEASE_HINT)
    base = repo.rstrip("/").removesuffix(".git")
    if release is None:
        return Location(url=f"{base}/releases/latest/download/")
    return Location(url=f"{base}/releases/download/{urllib.parse.quote(release, safe='')}/")


# --- download -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """What `download_release` left in the output directory."""

    entry: Entry
    root: Path  # DIR/cpython-<version>-<triple>/
    archive: Path  # DIR/cpython-<version>-<triple>.tar.gz
    dev_archive: Path | None  # DIR/cpython-...-dev.tar.gz with --dev
    already: bool  # everything was there before


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_archive(path: Path, entry: Entry, label: str) -> None:
    """The archive (the artifact or a companion that shares its top directory) holds only `entry.name/...`, its
    first file is BUILD.json, whose sha256 is the index's `build_json_sha256` and which names the entry's CPython
    version and triple."""
    top = entry.name
    record: bytes | None = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name.rstrip("/") != top and not member.name.startswith(top + "/"):
                    raise ArchiveError(f"{label}: {member.name!r} is outside the top directory {top}/",
                                       hint="a wasmbuild archive holds one top directory cpython-<version>-<triple>/")
                if record is None and member.isfile():
                    if member.name != f"{top}/{RECORD_NAME}":
                        raise ArchiveError(f"{label}: its first file is {member.name!r}, not {top}/{RECORD_NAME}",
                                           hint="is this a wasmbuild archive?")
                    if member.size > MAX_RECORD_SIZE:
                        raise ArchiveError(f"{label}: its {RECORD_NAME} is {member.size} bytes: not a build record")
                    f = tar.extractfile(member)
                    record = f.read() if f else b""
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{label}: not a readable archive (truncated or corrupt?): {exc}") from None
    if record is None:
        raise ArchiveError(f"{label}: no {top}/{RECORD_NAME} inside", hint="is this a wasmbuild archive?")
    digest = _sha256_bytes(record)
    if digest != entry.build_json_sha256:
        raise ChecksumError(f"{label}: its {RECORD_NAME} disagrees with the release index:\n"
                            f"  release.json says {entry.build_json_sha256}\n  the archive has  {digest}",
                            hint="the archive and the index do not belong together; nothing was written")
    try:
        data = json.loads(record)
        found = (data["python"]["version"], data["target"]["triple"])
    except (ValueError, KeyError, TypeError):
        raise ArchiveError(f"{label}: its {RECORD_NAME} is not a build record") from None
    if found != (entry.python, entry.triple):
        raise DownloadError(f"{label}: its {RECORD_NAME} is of CPython {found[0]} for {found[1]}, the release index "
                            f"says {entry.python} for {entry.triple}",
                            hint="the release index is inconsistent; nothing was written")


def _extract(path: Path, dest: Path, label: str) -> None:
    try:
        with tarfile.open(path, "r:gz") as tar:
            safe_extract(tar, dest, label=label, max_bytes=expansion_limit(path.stat().st_size))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"{label}: not a readable archive: {exc}") from None


def _existing_file(path: Path, sha256: str) -> bool:
    """True when `path` holds these bytes, False when it is absent; UsageError when it holds something else."""
    if not path.exists() and not path.is_symlink():
        return False
    if path.is_file() and cache.sha256_file(path) == sha256:
        return True
    raise UsageError(f"{path} already exists and differs from the release's file",
                     hint="remove it, or download into another directory with -o DIR")


def _existing_tree(root: Path, entry: Entry) -> bool:
    """True when `root` is this artifact already unpacked: its BUILD.json is the release's and its python.wasm the
    one that record names. False when absent; UsageError else."""
    if not root.exists() and not root.is_symlink():
        return False
    record = root / RECORD_NAME
    if root.is_symlink() or not root.is_dir() or not record.is_file() or record.is_symlink() \
            or cache.sha256_file(record) != entry.build_json_sha256:
        raise UsageError(f"{root} already exists and is not this artifact (its {RECORD_NAME} differs from the "
                         "release's)", hint="remove it, or download into another directory with -o DIR")
    try:
        wanted = json.loads(record.read_bytes())["artifact"]["python.wasm"]["sha256"]
    except (ValueError, KeyError, TypeError):
        wanted = None
    wasm = root / "python.wasm"
    if not isinstance(wanted, str) or wasm.is_symlink() or not wasm.is_file() or cache.sha256_file(wasm) != wanted:
        what = ("its record names no python.wasm sha256 to check it against" if not isinstance(wanted, str)
                else "its python.wasm is missing" if not wasm.is_file() or wasm.is_symlink()
                else "its python.wasm differs from the one its record names")
        raise UsageError(f"{root} already exists but is not intact: {what} (damaged, or changed after it was "
                         "unpacked)", hint=f"remove {root} and run the same command again, or download into another "
                         "directory with -o DIR")
    return True


def _describe(entry: Entry) -> str:
    text = f"CPython {entry.python} for {entry.target} ({entry.triple}): {entry.file} ({entry.size / 1e6:.1f} MB)"
    t = entry.tests
    if t and all(k in t for k in ("passed", "failed", "crashed", "skipped")):
        text += (f"; test suite{' (' + str(t['selection']) + ')' if t.get('selection') else ''}: {t['passed']} "
                 f"passed, {t['failed']} failed, {t['crashed']} crashed, {t['skipped']} skipped")
    return text


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _remove_stale_staging(out_dir: Path, name: str) -> None:
    """Staging directories of downloads killed without a chance to clean up (their process is gone)."""
    for stale in out_dir.glob(f".{name}.download-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            cache.remove_tree(stale)
        except OSError:  # alive, or not ours to ask about
            continue


def _fetch(location: Location, name: str, dest: Path, sha256: str, size: int, cache_root: Path) -> None:
    """One archive of the release, verified; the errors say what they mean for a release."""
    log.info(f"  fetching {name}: {location.locate(name)}")
    partial = cache_root / "releases" / "partial" / f"{sha256[:16]}-{name}"
    try:
        location.fetch(name, dest, sha256, size, partial=partial)
    except NotFound as exc:
        raise DownloadError(f"{name} is named in the release index but missing at {location} ({exc})",
                            hint="the release is incomplete (an interrupted upload?); nothing was written") from None
    except ChecksumError as exc:
        raise ChecksumError(f"{name} at {location} is not the file the release index names: {exc.args[0]}",
                            hint="the file was replaced or damaged after the release was made; nothing was "
                            "written") from None
    except DownloadError as exc:
        if location.url is None:
            raise
        try:
            kept = partial.stat().st_size if partial.is_file() else 0
        except OSError:
            kept = 0
        if kept:
            hint = (f"run the same command again: it resumes the transfer (the {kept} bytes received so far are kept "
                    "in the cache); nothing was written")
        else:
            hint = ("check the release location and the network, then run the same command again; nothing was "
                    "written")
        raise DownloadError(exc.args[0], hint=hint) from None


def download_release(location: Location, *, python: str | None, target: str, out_dir: Path, dev: bool = False,
                     cache_root: Path) -> Installed:
    """Fetch, check and unpack one artifact of the release at `location` into `out_dir`: the archive (and with `dev`
    its -dev companion) kept as `out_dir/<file>`, unpacked as `out_dir/cpython-<version>-<triple>/`. The cache
    holds the partial file of an interrupted transfer (the next run resumes it). Nothing reaches `out_dir` unless
    every check passed."""
    out_dir = out_dir.expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file, not a directory")
    index_origin = location.locate(INDEX_NAME)
    try:
        index_bytes = location.read(INDEX_NAME)
    except NotFound as exc:
        raise DownloadError(f"no {INDEX_NAME} at {location} ({exc})",
                            hint=f"is it a release location? {INDEX_HINT}; or {RELEASE_HINT}") from None
    except DownloadError as exc:
        raise DownloadError(f"cannot read the release index at {location}: {exc}",
                            hint="check the location (--from) and the network") from None
    index = load_index(index_bytes, index_origin)
    entry = pick(index, python, target, origin=f"the release at {location}")
    wanted: list[tuple[str, str, int]] = [(entry.file, entry.sha256, entry.size)]
    if dev:
        companion = entry.companion("dev")
        if companion is None:
            raise UsageError(f"the release at {location} has no -dev archive for {entry.file}",
                             hint="download without --dev")
        wanted.append((companion.file, companion.sha256, companion.size))
    sums_origin = location.locate(SUMS_NAME)
    try:
        sums_bytes = location.read(SUMS_NAME)
    except NotFound as exc:
        raise DownloadError(f"no {SUMS_NAME} at {location} ({exc})",
                            hint="every release holds SHA256SUMS beside release.json; nothing was written") from None
    except DownloadError as exc:
        raise DownloadError(f"cannot read {SUMS_NAME} at {location}: {exc}",
                            hint="check the location (--from) and the network; nothing was written") from None
    sums = parse_sums(sums_bytes, sums_origin)
    listed = [(name, digest) for name, digest, _ in wanted]
    if INDEX_NAME in sums:
        listed.insert(0, (INDEX_NAME, _sha256_bytes(index_bytes)))
    check_sums(sums, listed, sums_origin)
    log.info(f"release at {location}: wasmbuild {index.wasmbuild_version}"
             + (f" (commit {index.wasmbuild_commit[:12]})" if index.wasmbuild_commit else ""))
    log.info(f"  {_describe(entry)}")

    root = out_dir / entry.name
    installed = Installed(entry, root, out_dir / entry.file, out_dir / wanted[1][0] if dev else None, already=False)
    # A first look without the lock: what is there and intact needs no lock, nor the network.
    if _all_there(out_dir, root, entry, wanted):
        return replace(installed, already=True)
    created = _make_output(out_dir)
    done = False
    try:
        with log.step(f"Download {entry.name}" + (" with its -dev archive" if dev else "")), \
                _output_lock(out_dir), cache.lock(cache_root / "releases", name="download", wait=True):
            # Again under the lock: another download into this directory may have placed it meanwhile.
            if _all_there(out_dir, root, entry, wanted):
                done = True
                return replace(installed, already=True)
            _place_release(location, entry, wanted, out_dir, dev, cache_root)
            done = True
    finally:
        if not done:
            _remove_empty(created)
    return installed


def _all_there(out_dir: Path, root: Path, entry: Entry, wanted: list[tuple[str, str, int]]) -> bool:
    """True (and said) when the tree and every wanted archive are in `out_dir`, intact; UsageError when something
    else is in their place."""
    have_tree = _existing_tree(root, entry)
    present = [_existing_file(out_dir / name, digest) for name, digest, _ in wanted]
    if have_tree and all(present):
        log.info(f"✓ already there: {root} (and {', '.join(name for name, _, _ in wanted)})")
        return True
    return False


def _make_output(out_dir: Path) -> list[Path]:
    """Create `out_dir` (and its missing parents, returned deepest first); UsageError when it cannot be made or
    written to."""
    created = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise UsageError(f"-o {out_dir}: cannot create the directory: {exc.strerror or exc}",
                         hint="name a directory you can create and write to") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        _remove_empty(created)
        raise UsageError(f"-o {out_dir}: the directory is not writable", hint="name a directory you can write to")
    return created


@contextlib.contextmanager
def _output_lock(out_dir: Path) -> Iterator[None]:
    """One download at a time into `out_dir`: a lock on the directory itself (nothing is written into it). The
    others wait, then find what the first one placed."""
    try:
        fd = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UsageError(f"-o {out_dir}: cannot open the directory: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"waiting for another download into {out_dir} to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _place_release(location: Location, entry: Entry, wanted: list[tuple[str, str, int]], out_dir: Path, dev: bool,
                   cache_root: Path) -> None:
    """Fetch, check and unpack what is missing in a hidden staging directory in `out_dir`, then rename it into place;
    a failure at any point (Ctrl-C included) takes back what was placed. The caller holds the output lock."""
    root = out_dir / entry.name
    have_tree = _existing_tree(root, entry)
    present = {name: _existing_file(out_dir / name, digest) for name, digest, _ in wanted}
    _remove_stale_staging(out_dir, entry.name)
    staging = out_dir / f".{entry.name}.download-{os.getpid()}"
    cache.remove_tree(staging)
    try:
        (staging / "archives").mkdir(parents=True)
    except OSError as exc:
        cache.remove_tree(staging)
        raise UsageError(f"-o {out_dir}: cannot write into the directory: {exc.strerror or exc}",
                         hint="name a directory you can write to") from None
    placed: list[tuple[Path, Path]] = []  # (where it is now, where it came from in staging)
    old = staging / "old"
    try:
        archives: list[tuple[Path, bool]] = []  # (path, fetched now)
        for name, digest, size in wanted:
            if present[name]:
                archives.append((out_dir / name, False))
            else:
                _fetch(location, name, staging / "archives" / name, digest, size, cache_root)
                archives.append((staging / "archives" / name, True))
        for path, _ in archives:
            check_archive(path, entry, path.name)
        log.info(f"  ✓ sha256 and size as release.json and {SUMS_NAME} give them; {RECORD_NAME} as the index "
                 "gives it")
        tree = staging / "tree"
        if not have_tree:
            unpack = [path for path, _ in archives]
        elif dev and archives[1][1]:  # the -dev archive joins the tree unpacked by an earlier download
            shutil.copytree(root, tree / entry.name, symlinks=True)
            unpack = [archives[1][0]]
        else:
            unpack = []
        for path in unpack:
            _extract(path, tree, path.name)
        if unpack and {p.name for p in tree.iterdir()} != {entry.name}:  # checked member by member: a last guard
            raise ArchiveError(f"{entry.file}: expected one top directory {entry.name}/ inside")
        # Into place: the tree first (an archive in out_dir means its files are in the tree), then the archives.
        try:
            if unpack:
                if have_tree:
                    root.rename(old)
                (tree / entry.name).rename(root)
                placed.append((root, tree / entry.name))
            for path, fetched in archives:
                if fetched:
                    dest = out_dir / path.name
                    if dest.exists() or dest.is_symlink():  # cannot be (we hold the lock): never overwrite it
                        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dest))
                    path.rename(dest)
                    placed.append((dest, path))
        except OSError as exc:
            raise UsageError(f"cannot put the download in place in {out_dir}: {exc.strerror or exc}"
                             + (f" ({exc.filename})" if exc.filename else ""),
                             hint="nothing was left in it; check the directory's permissions and space") from None
    except BaseException:
        for now, was in reversed(placed):  # take back what was placed: the directory is left as it was
            with contextlib.suppress(OSError):
                now.rename(was)
        if old.exists() and not root.exists():
            with contextlib.suppress(OSError):
                old.rename(root)
        raise
    finally:
        cache.remove_tree(staging)


def download_artifact(*, source: str | None, release: str | None, python: str | None, target: str,
                      output: Path | None, dev: bool, cache_root: Callable[[], Path]) -> Installed:
    """`wasmbuild download`: one artifact of the release at `source` (--from: a url or a directory), else of the
    project's release `release` (a tag; None: the latest), unpacked into `output` (None: the current directory).
    Every option is checked before the network is used or anything is written: `cache_root` (which resolves and
    makes the cache directory) is called only then."""
    if source is not None and release is not None:
        raise UsageError("--release names a release of the project's repository; --from names the location itself",
                         hint="give one of them (a release's url for --from ends in .../releases/download/TAG/)")
    check_requested(python)
    location = location_from(source) if source is not None else default_location(release)
    out_dir = (output or Path.cwd()).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file, not a directory", hint="name a directory (it is created if missing)")
    _check_output(out_dir)
    return download_release(location, python=python, target=target, out_dir=out_dir, dev=dev,
                            cache_root=cache_root())


def _check_output(out_dir: Path) -> None:
    """Before the network is used: `out_dir`, or the nearest of its parents that exists, is a directory this user
    can write into (UsageError otherwise)."""
    nearest = next((d for d in (out_dir, *out_dir.parents) if d.exists() or d.is_symlink()), None)
    if nearest is None or nearest == out_dir:
        if nearest is not None and not os.access(out_dir, os.W_OK | os.X_OK):
            raise UsageError(f"-o {out_dir}: the directory is not writable", hint="name a directory you can write to")
        return
    if not nearest.is_dir():
        raise UsageError(f"-o {out_dir}: cannot create it: {nearest} is a file, not a directory",
                         hint="name a directory (it is created if missing)")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"-o {out_dir}: cannot create it: {nearest} is not writable",
                         hint="name a directory you can create and write to")


def how_to_run(installed: Installed, cwd: Path | None = None) -> list[str]:
    """The lines that tell how to run what `download_release` unpacked (paths relative to `cwd` when inside it)."""
    import shlex

    def show(path: Path) -> str:
        base = cwd or Path.cwd()
        try:
            return shlex.quote(str(path.relative_to(base)))
        except ValueError:
            return shlex.quote(str(path))

    hello = "-c \"print('hello')\""
    lines = [f"run it: python -m wasmbuild run {show(installed.archive)} -- {hello}"]
    launcher = installed.root / "python.sh"
    if launcher.is_file():
        tool = "the wasmtime CLI" if installed.entry.target == "wasi" else "node"
        lines.append(f"    or: {show(launcher)} {hello}   (the launcher; needs {tool})")
    return lines
