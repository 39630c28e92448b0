"""The cache directory: downloads, toolchains, sources, build trees, compiled wasm modules.

Every entry is a directory that is valid only when it holds a stamp written last (`.wasmbuild-stamp.json`)
whose key matches the hash of the entry's inputs. A run that finds an entry without a valid stamp (an
interrupted earlier run, a changed input) deletes it and builds it again. Failed steps delete their entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wasmbuild import log
from wasmbuild.errors import LockError
from wasmbuild.files import atomic_write, write_json

STAMP_NAME = ".wasmbuild-stamp.json"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by wasmbuild.\n"
    "# For information about cache directory tags, see https://bford.info/cachedir/\n"
)


def default_cache_dir() -> Path:
    if env := os.environ.get("WASMBUILD_CACHE_DIR"):
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return (Path(base) / "wasmbuild").resolve()


def ensure_cache_root(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tag = root / "CACHEDIR.TAG"
    if not tag.exists():
        atomic_write(tag, CACHEDIR_TAG)
    return root


def hash_key(data: Any) -> str:
    """A stable hash of JSON-serialisable inputs (dict order does not matter)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> list[int]:
    st = path.stat()
    # ctime too: rewriting a file and restoring its mtime (touch -d, cp -p) still changes its ctime.
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def sha256_file_memo(path: Path, cache_root: Path) -> str:
    """sha256_file, remembered in the cache by the file's identity (path, size, mtime, ctime, inode, device):
    running the same archive or module again does not read it again. A changed file is hashed again."""
    path = path.resolve()
    memo = cache_root / "hashes" / f"{hashlib.sha256(os.fsencode(path)).hexdigest()[:32]}.json"
    ident = _identity(path)
    try:
        data = json.loads(memo.read_text())
        if data["path"] == str(path) and data["identity"] == ident:
            return str(data["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = sha256_file(path)
    if _identity(path) == ident:  # not written to while it was read
        # A memo is only a shortcut: a file where hashes/ belongs or a directory where the memo belongs (a
        # damaged cache) is replaced; a memo that cannot be written costs a re-hash next time, never the run.
        with contextlib.suppress(OSError):
            if not memo.parent.is_dir():
                remove_tree(memo.parent)
            if memo.is_dir() and not memo.is_symlink():
                remove_tree(memo)
            memo.parent.mkdir(parents=True, exist_ok=True)
            write_json(memo, {"path": str(path), "identity": ident, "sha256": digest})
    return digest


def read_stamp(entry: Path) -> dict[str, Any] | None:
    try:
        return json.loads((entry / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_valid(entry: Path, key: str) -> bool:
    stamp = read_stamp(entry)
    return stamp is not None and stamp.get("key") == key


def write_stamp(entry: Path, key: str, **extra: Any) -> None:
    write_json(entry / STAMP_NAME, {"key": key, **extra})


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


@contextlib.contextmanager
def fresh_entry(entry: Path, key: str, **stamp_extra: Any) -> Iterator[Path]:
    """Create `entry` from scratch; stamp it on success, delete it on any failure (Ctrl-C included)."""
    remove_tree(entry)
    entry.mkdir(parents=True)
    try:
        yield entry
    except BaseException:
        remove_tree(entry)
        raise
    write_stamp(entry, key, **stamp_extra)


@contextlib.contextmanager
def lock(root: Path, name: str = "wasmbuild", *, wait: bool = False) -> Iterator[None]:
    """An exclusive lock so two runs never write the same cache at once. Held by another run: LockError, or with
    `wait` a message naming the holder's pid and a wait until it is released (a killed holder releases it)."""
    ensure_cache_root(root)
    path = root / f".{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            if not wait:
                raise LockError(
                    f"another wasmbuild run (pid {holder}) is using the cache {root}",
                    hint="wait for it to finish, or use another --cache-dir",
                ) from None
            log.info(f"waiting for another wasmbuild run (pid {holder}) to finish with the cache {root} ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("  the cache is free: going on")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
