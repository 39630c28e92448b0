"""Artifacts as things to run: what kind of artifact a directory is, unpacking an archive into the cache, and
running it by its kind with the engine it needs (engines/).

The one answer to "what is this artifact" is `artifact_runtime(root)`: a WASI artifact (python.wasm and lib/, run
by wasmtime), an Emscripten one of the node variant (python.js, run by node) or of the web variant (python.mjs,
loaded through its JS API, never run as a command). Each Runtime knows its target's name and variant, what the
guest's sys.platform says, how it runs Python, how regrtest's workers run it and how a guest names a host path.

This module sits above the targets and below the commands, and imports only floors below it (engines/, cache,
archive, errors, names): running an artifact loads no recipe, download, toolchain or target.
Node for an Emscripten artifact comes from the caller (`node`: a function giving node's path, called only when
node is needed); without one, engines.nodejs.available_node finds a node that is already there.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, NoReturn

from wasmbuild import cache, log
from wasmbuild.archive import expansion_limit, safe_extract
from wasmbuild.engines.nodejs import available_node, run_node_python
from wasmbuild.engines.wasmtime_api import run_wasm
from wasmbuild.engines.wasmtime_cli import exec_wasm, provisioned_wasmtime
from wasmbuild.errors import ArchiveError, RunError, UsageError
from wasmbuild.files import write_json
from wasmbuild.names import TARGET_NAMES, WEB_DATA, WEB_MODULE

# Where an Emscripten artifact gets node from: a function returning node's path (called only when node is
# needed). The commands pass one that provisions wasmbuild's pinned node (toolchain.node.pinned_node_finder).
NodeFinder = Callable[[], Path]

__all__ = ["WEB_DATA", "WEB_MODULE", "NodeFinder", "NodeRuntime", "Runtime", "WasiRuntime", "WebRuntime",
           "artifact_runtime", "copy_tree", "guest_env", "is_wasm_module", "refuse_web_artifact",
           "run_artifact", "run_python", "tree_fingerprint", "unpack_artifact", "wasi_python"]


# --- layout and unpacking -----------------------------------------------------------------------------------


def _check_layout(root: Path, label: str) -> None:
    """An artifact: python.wasm, and the standard library under lib/ (mapped at /lib), or for a web artifact
    (python.mjs) in its file package, python.data."""
    if not (root / "python.wasm").is_file():
        raise ArchiveError(f"{label}: no python.wasm in {root.name}/", hint="is this a wasmbuild artifact?")
    if (root / WEB_MODULE).is_file():
        if not (root / WEB_DATA).is_file():
            raise ArchiveError(f"{label}: {root.name}/ has {WEB_MODULE} but no {WEB_DATA} (the standard library)",
                               hint="rebuild the artifact, or use a complete archive from dist/")
        return
    if not (root / "lib").is_dir():
        raise ArchiveError(f"{label}: {root.name}/ has no lib/ (the standard library)",
                           hint="rebuild the artifact, or use a complete archive from dist/")


# Written beside the unpacked tree at unpack time: every file's size and sha256, and a fingerprint of every file's
# and directory's stat (tree_fingerprint), checked on every use. Its format is part of the cache key.
MANIFEST_NAME = ".wasmbuild-manifest.json"
MANIFEST_FORMAT = 1


def unpack_artifact(artifact: Path, cache_root: Path) -> Path:
    """A directory holding python.wasm: the artifact itself, or its archive extracted into the cache.

    The archive is unpacked into a temporary directory, checked, given its manifest (each file's size and sha256
    and a stat fingerprint of the tree), stamped and renamed into place under a per-archive lock: concurrent runs
    of one archive wait for each other and never see a partial tree, and an archive that is refused leaves
    nothing behind. A tree in the cache is trusted only while its fingerprint still matches (no file written,
    added, removed or replaced since it was unpacked: a few milliseconds of stat calls); a changed tree, or one
    unpacked by a version without manifests, is unpacked again with a warning."""
    artifact = artifact.expanduser().resolve()
    if artifact.is_dir():
        _check_layout(artifact, str(artifact))
        return artifact
    if not artifact.is_file():
        raise UsageError(f"artifact not found: {artifact}")
    digest = cache.sha256_file_memo(artifact, cache_root)
    key = f"{digest}:manifest{MANIFEST_FORMAT}"
    entry = cache_root / "artifacts" / digest[:16]
    if not _trusted(entry, key, artifact):
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create the unpacked-artifact cache {entry.parent}: {exc.strerror or exc}",
                           hint=f"remove {entry.parent} if it is a file, or use another --cache-dir") from None
        with cache.lock(entry.parent, name=digest[:16], wait=True):
            if not _trusted(entry, key, artifact, warn=True):
                tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
                cache.remove_tree(tmp)
                try:
                    try:
                        with tarfile.open(artifact, "r:*") as tar:
                            safe_extract(tar, tmp, label=str(artifact),
                                         max_bytes=expansion_limit(artifact.stat().st_size))
                    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
                        raise ArchiveError(f"{artifact}: not a readable archive: {exc}") from None
                    root = _single_root(tmp, artifact)
                    _check_layout(root, str(artifact))
                    files = _file_digests(root)
                    write_json(tmp / MANIFEST_NAME, {"format": MANIFEST_FORMAT, "root": root.name, "files": files})
                    cache.write_stamp(tmp, key, fingerprint=tree_fingerprint(root))
                    cache.remove_tree(entry)
                    tmp.rename(entry)
                finally:
                    cache.remove_tree(tmp)
    return _single_root(entry, artifact)


def _trusted(entry: Path, key: str, artifact: Path, *, warn: bool = False) -> bool:
    """The unpacked tree at `entry` is whole and unchanged: its stamp's key matches and the tree's stat
    fingerprint is still the one recorded at unpack time. With `warn`, a changed tree is reported."""
    stamp = cache.read_stamp(entry)
    if stamp is None or stamp.get("key") != key:
        return False
    try:
        root = _single_root(entry, artifact)
        same = stamp.get("fingerprint") == tree_fingerprint(root)
        if not same and warn and _content_unchanged(entry, root):
            # Only the stat changed (a file touched or read back in place): the contents are the manifest's.
            cache.write_stamp(entry, key, fingerprint=tree_fingerprint(root))
            return True
    except (ArchiveError, OSError):
        same = False
    if not same and warn:
        log.warn(f"the unpacked copy of {artifact.name} in the cache ({entry}) was changed after it was unpacked "
                 "(a file written, added or removed): unpacking the archive again")
    return same


def tree_fingerprint(root: Path) -> str:
    """A hash of the stat of every file, link and directory under `root` (name, kind, size, mtime, ctime,
    inode), `root` included: writing a file in place, replacing it, adding or removing an entry anywhere
    changes it (a write or a changed time always moves ctime, which no guest can set back)."""
    top = os.lstat(root)
    lines = [f".\0{top.st_mode}\0{top.st_mtime_ns}\0{top.st_ctime_ns}\0{top.st_ino}"]

    def walk(path: str, rel: str) -> None:
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            lines.append(f"{rel}/{e.name}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
                         f"\0{st.st_ino}")
            if stat.S_ISDIR(st.st_mode):
                walk(e.path, f"{rel}/{e.name}")

    walk(os.fspath(root), ".")
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def _file_digests(root: Path) -> dict[str, list[int | str]]:
    """Every regular file under `root`: its path relative to `root` -> [size, sha256]; every symbolic link ->
    [-1, its target]."""
    files: dict[str, list[int | str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            files[path.relative_to(root).as_posix()] = [-1, os.readlink(path)]
        elif path.is_file():
            files[path.relative_to(root).as_posix()] = [path.stat().st_size, cache.sha256_file(path)]
    return files


def _content_unchanged(entry: Path, root: Path) -> bool:
    """The files and links under `root` are exactly the manifest's: the same paths, sizes and sha256 (a tree whose
    stat fingerprint moved is checked against it before it is unpacked again)."""
    try:
        manifest = json.loads((entry / MANIFEST_NAME).read_text())
        return manifest.get("format") == MANIFEST_FORMAT and manifest.get("root") == root.name \
            and manifest.get("files") == _file_digests(root)
    except (OSError, ValueError, AttributeError):
        return False


def _single_root(tree: Path, artifact: Path) -> Path:
    found = [p for p in tree.iterdir() if p.is_dir()] if tree.is_dir() else []
    if len(found) != 1:
        raise ArchiveError(f"{artifact}: expected one top-level directory <name>/ inside, found {len(found)}",
                           hint="is this a wasmbuild artifact?")
    return found[0]


def guest_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"PYTHONHOME": "/", **(extra or {})}


def wasi_python(root: Path, args: Sequence[str], dirs: Sequence[tuple[Path, str]], env: dict[str, str] | None = None,
                lib: Path | None = None) -> tuple[Path, list[str], list[tuple[Path, str]], dict[str, str]]:
    """How a WASI artifact's python.wasm runs, as python.sh does: (module, argv, preopens, environment) with the
    given preopens, the artifact's lib/ (or `lib`) at /lib and PYTHONHOME=/."""
    return root / "python.wasm", ["python", *args], [*dirs, (lib or root / "lib", "/lib")], guest_env(env)


def is_wasm_module(path: Path) -> bool:
    """A WebAssembly module file (its magic number), such as a bundle, rather than an artifact."""
    try:
        with open(path, "rb") as f:
            return path.is_file() and f.read(4) == b"\0asm"
    except OSError:
        return False


# --- the kinds of artifact --------------------------------------------------------------------------------------


def refuse_web_artifact(root: Path) -> NoReturn:
    raise UsageError(f"{root.name} is a web artifact: it runs in a browser, a web worker or node through its JS API "
                     f"({WEB_MODULE}), not as a command",
                     hint="wasmbuild run and the test suite take WASI and node (emscripten) artifacts: build one "
                     "without --variant web")


class Runtime(ABC):
    """How the unpacked artifact at `root` runs: one subclass per kind of artifact (artifact_runtime)."""

    target: ClassVar[str]  # the target that builds this kind of artifact (targets.TARGETS)
    variant: ClassVar[str | None] = None  # and its variant (targets.VARIANTS; None: the target has none)
    sys_platform: ClassVar[str]  # what the guest's sys.platform says

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @abstractmethod
    def run_python(self, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
                   env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                   timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
                   node: NodeFinder | None = None) -> int:
        """Run the artifact's Python with `args` (Python's arguments), the given directories (preopened, or the
        first as the working directory) and environment; the guest's exit status."""

    @abstractmethod
    def worker_command(self, cache_root: Path) -> tuple[list[str], list[str]]:
        """How regrtest's workers run the artifact, and the same with neutral names for the record."""

    @abstractmethod
    def guest_path(self, work: Path, name: str) -> str:
        """How a guest given the work directory `work` (as its first directory) names work/<name>."""


class WasiRuntime(Runtime):
    """A WASI artifact (python.wasm, the standard library in lib/): run by wasmtime with preopened directories."""

    target = "wasi"
    sys_platform = "wasi"

    def run_python(self, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
                   env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                   timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
                   node: NodeFinder | None = None) -> int:
        """As python.sh does: the given preopens, the artifact's lib/ at /lib read-only (or a private copy `lib`,
        writable), PYTHONHOME=/."""
        return self.run(args, cache_root, dirs, env=env, stdout=stdout, stderr=stderr, timeout=timeout,
                        max_memory=max_memory, lib=lib)

    def run(self, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
            env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
            timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
            exit_when_stuck: bool = False) -> int:
        """run_python, and with `exit_when_stuck` a guest stuck past --timeout ends this process (see
        engines.wasmtime_api.run_wasm): for `wasmbuild run`, which owns its process."""
        wasm, argv, mounts, wasi_env = wasi_python(self.root, args, dirs, env, lib)
        # The shared, verified standard library cannot be changed by a guest; a private copy is the guest's own.
        read_only = () if lib is not None else ("/lib",)
        return run_wasm(wasm, argv, cache_root, dirs=mounts, env=wasi_env, stdout=stdout, stderr=stderr,
                        timeout=timeout, max_memory=max_memory, read_only=read_only,
                        exit_when_stuck=exit_when_stuck)

    def worker_command(self, cache_root: Path) -> tuple[list[str], list[str]]:
        """wasmbuild's own wasmtime runner with the host's / preopened as the guest's / (so the paths regrtest
        hands its workers mean the same inside), a private copy of the artifact's lib/ at /lib (guests write
        bytecode and test files there: a worker listing a directory while another writes to it could miss
        entries; a copy, not links, so that no write reaches the cached tree) and the worker's environment
        (TMPDIR) passed in. PATH is empty: with the host's / visible,
        shutil.which would find host programs through os.defpath (test_bz2 runs bunzip2 when it finds one), and no
        program can be started from WASI."""
        options = ["--dir", "/::/", "--inherit-env", "--env", "PATH=", "--private-lib"]
        return ([sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(cache_root), *options, str(self.root),
                 "--"], ["<python>", "-m", "wasmbuild", "run", *options, "<artifact>", "--"])

    def guest_path(self, work: Path, name: str) -> str:
        return f"/{name}"  # the work directory is the guest's /


class NodeRuntime(Runtime):
    """An Emscripten artifact of the node variant (python.js + python.wasm): run by node, seeing the host's files
    (NODERAWFS)."""

    target = "emscripten"
    variant = "node"
    sys_platform = "emscripten"

    def run_python(self, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
                   env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                   timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
                   node: NodeFinder | None = None) -> int:
        """Under node as python.sh does: the guest sees the host's files; the first directory is the working
        directory. `node` gives node's path (default: one already there, engines.nodejs.available_node)."""
        if max_memory is not None:
            raise UsageError("--max-memory applies to WASI artifacts only (an Emscripten module's maximum memory "
                             "is fixed when it is linked)")
        exe = node() if node is not None else available_node(cache_root)
        return run_node_python(exe, self.root, args, cwd=dirs[0][0] if dirs else None, env=env, stdout=stdout,
                               stderr=stderr, timeout=timeout)

    @staticmethod
    def refuse_confinement(*, dirs: Sequence[tuple[Path, str]] | None = None, private_lib: bool = False,
                           max_memory: int | None = None) -> None:
        """`wasmbuild run`'s options that would confine a guest (given: not None/False) cannot confine this one:
        refused in one line saying why and what contains untrusted code instead."""
        given = [name for name, on in (("--dir", dirs is not None), ("--private-lib", private_lib),
                                        ("--max-memory", max_memory is not None)) if on]
        if given:
            raise UsageError(f"{', '.join(given)}: the node (emscripten) artifact is not a sandbox: python.js runs "
                             "under node with NODERAWFS, so the guest sees and writes the host's files with the "
                             "rights of the user running it and nothing can confine it; for untrusted code run the "
                             "WASI artifact (cpython-<version>-wasm32-wasip1.tar.gz) under wasmtime: "
                             "wasmbuild run --dir HOST::GUEST --timeout S --max-memory M WASI-ARCHIVE -- ...")

    def worker_command(self, cache_root: Path) -> tuple[list[str], list[str]]:
        """The artifact's python.sh (node with NODERAWFS sees the host's files)."""
        launcher = self.root / "python.sh"
        if not launcher.is_file():
            raise UsageError(f"{self.root} has no python.sh launcher")
        return [str(launcher)], ["<artifact>/python.sh"]

    def guest_path(self, work: Path, name: str) -> str:
        return str(work / name)  # NODERAWFS: host paths


class WebRuntime(Runtime):
    """An Emscripten artifact of the web variant (python.mjs, python.wasm, python.data): loaded through its JS API
    in a browser, a web worker or node; not run as a command (checks/smoke.py drives its JS API under node)."""

    target = "emscripten"
    variant = "web"
    sys_platform = "emscripten"

    def run_python(self, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
                   env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                   timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
                   node: NodeFinder | None = None) -> int:
        refuse_web_artifact(self.root)

    def worker_command(self, cache_root: Path) -> tuple[list[str], list[str]]:
        refuse_web_artifact(self.root)

    def guest_path(self, work: Path, name: str) -> str:
        refuse_web_artifact(self.root)


def artifact_runtime(root: Path) -> Runtime:
    """The kind of the artifact unpacked at `root` (checked by the layout check first): a web artifact
    (python.mjs), else a node one (python.js), else a WASI one (python.wasm)."""
    if (root / WEB_MODULE).is_file():
        return WebRuntime(root)
    if (root / "python.js").is_file():
        return NodeRuntime(root)
    if (root / "python.wasm").is_file():
        return WasiRuntime(root)
    raise UsageError(f"{root} is not an artifact of any target ({', '.join(TARGET_NAMES)})")


def run_python(root: Path, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
               env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
               timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None,
               node: NodeFinder | None = None) -> int:
    """Run the unpacked artifact at `root` as its launcher does, by its kind (artifact_runtime): WASI with the
    given preopens and lib/ (or `lib`) at /lib, Emscripten under node (`node`) seeing the host's files."""
    return artifact_runtime(root).run_python(args, cache_root, dirs, env=env, stdout=stdout, stderr=stderr,
                                             timeout=timeout, max_memory=max_memory, lib=lib, node=node)


# --- `wasmbuild run` -------------------------------------------------------------------------------------------

def copy_tree(src: Path, dest: Path) -> None:
    """A private copy of `src` at `dest`: every file copied (times kept, so bytecode stays valid), none linked,
    so that nothing a guest writes there, in place or not, reaches `src` (the cached tree other runs use)."""
    shutil.copytree(src, dest, symlinks=True)


def run_artifact(artifact: Path, args: Sequence[str], cache_root: Path, *,
                 dirs: Sequence[tuple[Path, str]] | None = None, env: dict[str, str] | None = None,
                 timeout: float | None = None, max_memory: int | None = None, private_lib: bool = False,
                 engine: str = "auto", node: NodeFinder | None = None) -> int:
    """`wasmbuild run`: an artifact gets the current directory as / unless --dir says otherwise; a `.wasm` file
    (a bundle: wasmbuild bundle) runs as it is with the given directories only (none by default) and
    environment. A WASI artifact always runs in this process (wasmtime's Python API), its standard library
    preopened read-only: the pinned wasmtime CLI (49) has no read-only preopen. "auto" hands a plain run of a
    bundle (no limits) to the CLI when it is provisioned (exec_wasm); "api" keeps it in this process.
    With `private_lib`, the guest gets its own writable copy of the standard library (parallel test workers
    must not see each other's writes). --timeout bounds wall time, also for a guest blocked in a host call
    (exit TIMEOUT_EXIT). `node` gives node for an Emscripten artifact (see run_python)."""
    bundle = is_wasm_module(artifact)
    mounts = list(dirs) if dirs is not None else [] if bundle else [(Path.cwd(), "/")]
    for host, _ in mounts:
        if not Path(host).is_dir():
            raise UsageError(f"--dir {host}: not a directory")
    if bundle:
        # A plain run (no limits) goes to the pinned wasmtime CLI when it is provisioned: see exec_wasm.
        if engine == "auto" and timeout is None and max_memory is None and not private_lib \
                and (cli := provisioned_wasmtime(cache_root)) is not None:
            exec_wasm(cli, artifact, [artifact.name, *args], cache_root, dirs=mounts, env=dict(env or {}))
        return run_wasm(artifact, [artifact.name, *args], cache_root, dirs=mounts, env=dict(env or {}),
                        timeout=timeout, max_memory=max_memory, exit_when_stuck=True)
    root = unpack_artifact(artifact, cache_root)
    runtime = artifact_runtime(root)
    if isinstance(runtime, WebRuntime):
        refuse_web_artifact(root)
    if isinstance(runtime, NodeRuntime):
        runtime.refuse_confinement(dirs=dirs, private_lib=private_lib, max_memory=max_memory)
    if not isinstance(runtime, WasiRuntime):  # node guests see the host's files: nothing to map
        return runtime.run_python(args, cache_root, mounts, env=env, timeout=timeout, max_memory=max_memory,
                                  node=node)
    if not private_lib:
        return runtime.run(args, cache_root, mounts, env=env, timeout=timeout, max_memory=max_memory,
                           exit_when_stuck=True)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-lib-", dir=os.environ.get("TMPDIR")) as tmp:
        lib = Path(tmp) / "lib"
        copy_tree(root / "lib", lib)
        # A guest stuck past --timeout is left behind (not os._exit) so that its copy is still removed here.
        return runtime.run(args, cache_root, mounts, env=env, timeout=timeout, max_memory=max_memory, lib=lib)
