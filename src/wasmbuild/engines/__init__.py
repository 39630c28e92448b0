"""Run engines: how a WebAssembly module or an Emscripten python.js is run (wasmtime's Python API in this process,
the pinned wasmtime CLI, node). The lowest floor of running: an engine knows nothing of artifacts, recipes, targets
or toolchains (artifact.py says which engine an artifact needs); this package imports only the floors below it.

What every engine shares is here: the exit status of a guest stopped by a timeout, the native stack limit raised
for engines that run the guest on a process's main thread, and the lookup of a host tool that `wasmbuild` has
already provisioned into the cache (without loading the host-tools manifest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from wasmbuild import cache

# Exit status of a guest stopped by --timeout (as coreutils' timeout(1)).
TIMEOUT_EXIT = 124


def cache_dir(path: Path) -> Path:
    """`path` as a directory of the run cache (compiled modules): a file or a dangling link left where the
    directory belongs (a damaged or hand-edited cache) is removed first, as derived data that is made again."""
    if not path.is_dir():
        cache.remove_tree(path)  # a file, or a link to nothing: only the entry itself goes
        path.mkdir(parents=True, exist_ok=True)
    return path


def cache_file(path: Path) -> Path:
    """`path` as a file of the run cache: a directory (or anything that is not a regular file) left where the
    file belongs is removed, so the file is made again instead of failing on every run."""
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not path.is_file()):
        cache.remove_tree(path)
    return path


def unlimited_stack() -> None:
    """Raise this process's stack limit to its hard limit (the wasmtime CLI and node run the guest on the main
    thread; deep recursion in CPython's tests needs the room)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))


def provisioned_tool(cache_root: Path, name: str, command: str) -> Path | None:
    """The pinned host tool `name`'s `command` if the tool is already in the cache for the current host-tools
    manifest, else None. toolchain/hosttools.ensure writes the pointer (tools/<name>.current.json: the manifest,
    its sha256, the cache entry and its key); reading it costs no manifest parsing."""
    pointer = cache_root / "tools" / f"{name}.current.json"
    try:
        data = json.loads(pointer.read_text())
        manifest = Path(data["manifest"]).read_bytes()
        if hashlib.sha256(manifest).hexdigest() != data["manifest_sha256"]:
            return None
        entry = cache_root / "tools" / data["entry"]
        exe = entry / "bin" / command
        return exe if cache.is_valid(entry, data["key"]) and exe.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
