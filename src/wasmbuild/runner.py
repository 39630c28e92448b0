"""Running artifacts: unpacking an archive into the cache, a WASI python.wasm in-process with wasmtime's Python
API, an Emscripten python.js under node.

Pitfalls handled here (docs/platform-notes.md, "wasmtime"): an 8 MiB `max_wasm_stack` (what CPython's own runner uses)
aborts the process unless the async stack size is raised first (the wheel has no setter: we call the C
function), and the guest runs on a thread with a big native stack. Compiling the module takes seconds;
it is serialized into the cache keyed by the module's sha256, the wasmtime version and the config.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from wasmbuild import cache, log
from wasmbuild.archive import expansion_limit, safe_extract
from wasmbuild.errors import ArchiveError, RunError, UsageError
from wasmbuild.files import atomic_write
from wasmbuild.process import call

if TYPE_CHECKING:
    import wasmtime

MAX_WASM_STACK = 8 * 1024 * 1024
ASYNC_STACK = 16 * 1024 * 1024
THREAD_STACK = 256 * 1024 * 1024
CONFIG_ID = f"stack={MAX_WASM_STACK},async={ASYNC_STACK}"
# Exit status of a guest stopped by --timeout (as coreutils' timeout(1)).
TIMEOUT_EXIT = 124
# node's V8 stack for Emscripten artifacts (KiB), run with the stack rlimit raised to its hard limit: deep
# recursion in CPython's tests overflows node's default (~984 KiB) before wasm's own stack limit.
NODE_STACK_KB = 30000


def _check_layout(root: Path, label: str) -> None:
    """An artifact: python.wasm, and the standard library under lib/ (mapped at /lib), or for a web artifact
    (python.mjs) in its file package, python.data."""
    if not (root / "python.wasm").is_file():
        raise ArchiveError(f"{label}: no python.wasm in {root.name}/", hint="is this a wasmbuild artifact?")
    if is_web_artifact(root):
        if not (root / WEB_DATA).is_file():
            raise ArchiveError(f"{label}: {root.name}/ has {WEB_MODULE} but no {WEB_DATA} (the standard library)",
                               hint="rebuild the artifact, or use a complete archive from dist/")
        return
    if not (root / "lib").is_dir():
        raise ArchiveError(f"{label}: {root.name}/ has no lib/ (the standard library)",
                           hint="rebuild the artifact, or use a complete archive from dist/")


def unpack_artifact(artifact: Path, cache_root: Path) -> Path:
    """A directory holding python.wasm: the artifact itself, or its archive extracted into the cache.

    The archive is unpacked into a temporary directory, checked, stamped and renamed into place under a
    per-archive lock: concurrent runs of one archive wait for each other and never see a partial tree, and an
    archive that is refused leaves nothing behind."""
    artifact = artifact.expanduser().resolve()
    if artifact.is_dir():
        _check_layout(artifact, str(artifact))
        return artifact
    if not artifact.is_file():
        raise UsageError(f"artifact not found: {artifact}")
    digest = cache.sha256_file_memo(artifact, cache_root)
    entry = cache_root / "artifacts" / digest[:16]
    if not cache.is_valid(entry, digest):
        entry.parent.mkdir(parents=True, exist_ok=True)
        with cache.lock(entry.parent, name=digest[:16], wait=True):
            if not cache.is_valid(entry, digest):
                tmp = entry.with_name(f".{entry.name}.tmp-{os.getpid()}")
                cache.remove_tree(tmp)
                try:
                    try:
                        with tarfile.open(artifact, "r:*") as tar:
                            safe_extract(tar, tmp, label=str(artifact),
                                         max_bytes=expansion_limit(artifact.stat().st_size))
                    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
                        raise ArchiveError(f"{artifact}: not a readable archive: {exc}") from None
                    _check_layout(_single_root(tmp, artifact), str(artifact))
                    cache.write_stamp(tmp, digest)
                    cache.remove_tree(entry)
                    tmp.rename(entry)
                finally:
                    cache.remove_tree(tmp)
    return _single_root(entry, artifact)


def _single_root(tree: Path, artifact: Path) -> Path:
    found = [p for p in tree.iterdir() if p.is_dir()] if tree.is_dir() else []
    if len(found) != 1:
        raise ArchiveError(f"{artifact}: expected one top-level directory <name>/ inside, found {len(found)}",
                           hint="is this a wasmbuild artifact?")
    return found[0]


def _config_id(interruptible: bool) -> str:
    return CONFIG_ID + (",epoch" if interruptible else "")


def _engine(interruptible: bool = False) -> wasmtime.Engine:
    import wasmtime

    config = wasmtime.Config()
    # Epoch interruption (--timeout) changes the compiled code: it is part of the compiled module's cache key.
    config.epoch_interruption = interruptible
    try:
        from wasmtime import _ffi as ffi

        setter = getattr(ffi, "wasmtime_config_async_stack_size_set", None) or \
            ffi.dll.wasmtime_config_async_stack_size_set
        setter(config.ptr(), ASYNC_STACK)
    except (AttributeError, ImportError) as exc:  # pragma: no cover - depends on the wheel
        raise RunError(f"this wasmtime wheel cannot raise the async stack size ({exc})",
                       hint="install the pinned wasmtime version from pyproject.toml") from None
    config.max_wasm_stack = MAX_WASM_STACK
    return wasmtime.Engine(config)


def load_module(engine: wasmtime.Engine, wasm: Path, cache_root: Path, config_id: str = CONFIG_ID) -> wasmtime.Module:
    """Compile `wasm`, or load its serialized form from the cache."""
    import wasmtime

    version = getattr(wasmtime, "__version__", None) or _wasmtime_version()
    key = cache.hash_key({"wasm": cache.sha256_file_memo(wasm, cache_root), "wasmtime": version,
                          "config": config_id})
    compiled = cache_root / "wasmtime" / f"{key[:24]}.cwasm"
    if compiled.is_file():
        try:
            return wasmtime.Module.deserialize_file(engine, str(compiled))
        except wasmtime.WasmtimeError:
            compiled.unlink(missing_ok=True)
    try:
        module = wasmtime.Module.from_file(engine, str(wasm))
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise RunError(f"{wasm} is not a valid WebAssembly module: {first}",
                       hint="rebuild the artifact, or use a complete archive from dist/") from None
    compiled.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(compiled, bytes(module.serialize()))
    return module


def _wasmtime_version() -> str:
    """The wheel's version, from its dist-info directory's name (importlib.metadata alone costs 20 ms)."""
    import wasmtime

    package = Path(wasmtime.__file__).parent
    found = sorted(p.name for p in package.parent.glob("wasmtime-*.dist-info"))
    if len(found) == 1:
        return found[0].removeprefix("wasmtime-").removesuffix(".dist-info")
    from importlib.metadata import version

    return version("wasmtime")


# --- the wasmtime CLI: `wasmbuild run` hands a plain run to the pinned CLI (exec), precompiled once ----------
# Started through the CLI, a run skips importing wasmtime's Python API (about 30 ms) and loading the module into
# this process; `python -m wasmbuild run` then costs little more than the CLI itself (nox -s bench-wasi).

def provisioned_wasmtime(cache_root: Path) -> Path | None:
    """The pinned wasmtime CLI if it is already in the cache for the current host-tools manifest (provisioned by
    `wasmbuild bundle` or `wasmbuild bench`; the pointer is written by hosttools.ensure), else None."""
    pointer = cache_root / "tools" / "wasmtime.current.json"
    try:
        data = json.loads(pointer.read_text())
        manifest = Path(data["manifest"]).read_bytes()
        if hashlib.sha256(manifest).hexdigest() != data["manifest_sha256"]:
            return None
        entry = cache_root / "tools" / data["entry"]
        exe = entry / "bin" / "wasmtime"
        return exe if cache.is_valid(entry, data["key"]) and exe.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cli_flags() -> list[str]:
    """The engine settings of run_wasm, as CLI options (they are part of the precompiled module's key)."""
    return ["-W", f"max-wasm-stack={MAX_WASM_STACK}"]


def precompiled(cli: Path, wasm: Path, cache_root: Path) -> Path:
    """`wasmtime compile` of `wasm` by this CLI with cli_flags(), cached by the module's sha256."""
    key = cache.hash_key({"wasm": cache.sha256_file_memo(wasm, cache_root), "cli": cli.parent.parent.name,
                          "flags": cli_flags()})
    out = cache_root / "wasmtime-cli" / f"{key[:24]}.cwasm"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        proc = subprocess.run([str(cli), "compile", *cli_flags(), str(wasm), "-o", str(tmp)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RunError(f"{wasm} is not a valid WebAssembly module: {first}",
                           hint="rebuild the artifact, or use a complete archive from dist/")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def cli_argv(cli: Path, cwasm: Path, argv: Sequence[str], dirs: Sequence[tuple[Path, str]],
             env: dict[str, str]) -> list[str]:
    """The CLI command line for run_wasm's arguments (argv[0] included)."""
    command = [str(cli), "run", "--allow-precompiled", *cli_flags(), "--argv0", argv[0]]
    for host, guest in dirs:
        command += ["--dir", f"{Path(host).resolve()}::{guest}"]
    for name, value in sorted(env.items()):
        command += ["--env", f"{name}={value}"]
    return [*command, str(cwasm), *argv[1:]]


def exec_wasm(cli: Path, wasm: Path, argv: Sequence[str], cache_root: Path, *,
              dirs: Sequence[tuple[Path, str]] = (), env: dict[str, str] | None = None) -> NoReturn:
    """Replace this process by the wasmtime CLI running `wasm` as run_wasm would (same stack limit, preopens
    and environment; a trap exits 134 as there). The native stack limit is raised first: the CLI runs the guest
    on its main thread."""
    cwasm = precompiled(cli, wasm, cache_root)
    command = cli_argv(cli, cwasm, argv, dirs, env or {})
    sys.stdout.flush()
    sys.stderr.flush()
    _unlimited_stack()
    os.execv(command[0], command)


def run_wasm(wasm: Path, argv: Sequence[str], cache_root: Path, *, dirs: Sequence[tuple[Path, str]] = (),
             env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
             timeout: float | None = None, max_memory: int | None = None) -> int:
    """Run `wasm` with `argv` (argv[0] included); return the guest's exit code. `timeout` (seconds) stops the
    guest through epoch interruption (exit TIMEOUT_EXIT); `max_memory` (bytes) caps its linear memory (growing
    past it fails inside the guest: MemoryError in Python)."""
    import wasmtime

    engine = _engine(interruptible=timeout is not None)
    module = load_module(engine, wasm, cache_root, _config_id(timeout is not None))
    result: dict[str, object] = {}
    timed_out = threading.Event()

    def target() -> None:
        try:
            store = wasmtime.Store(engine)
            if timeout is not None:
                store.set_epoch_deadline(1)
            if max_memory is not None:
                store.set_limits(memory_size=max_memory)
            wasi = wasmtime.WasiConfig()
            wasi.argv = list(argv)
            wasi.env = sorted((env or {}).items())
            wasi.inherit_stdin()
            if stdout:
                wasi.stdout_file = str(stdout)
            else:
                wasi.inherit_stdout()
            if stderr:
                wasi.stderr_file = str(stderr)
            else:
                wasi.inherit_stderr()
            for host, guest in dirs:
                wasi.preopen_dir(str(host), guest)
            store.set_wasi(wasi)
            linker = wasmtime.Linker(engine)
            linker.define_wasi()
            instance = linker.instantiate(store, module)
            sys.stdout.flush()
            start = instance.exports(store)["_start"]
            if not isinstance(start, wasmtime.Func):
                raise RunError(f"{wasm}: its _start export is not a function", hint="is this a WASI command module?")
            start(store)
            result["code"] = 0
        except wasmtime.ExitTrap as exc:
            result["code"] = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            result["trap"] = str(exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread
            result["error"] = exc

    old = threading.stack_size()
    threading.stack_size(THREAD_STACK)
    try:
        thread = threading.Thread(target=target, name="wasm-guest", daemon=True)
        thread.start()
    finally:
        threading.stack_size(old)
    if timeout is not None:
        thread.join(timeout)
        if thread.is_alive():
            timed_out.set()
            engine.increment_epoch()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    if timed_out.is_set() and "trap" in result:
        log.info(f"wasmbuild: the guest ran longer than --timeout {timeout:g} s and was stopped")
        return TIMEOUT_EXIT
    if "trap" in result:
        log.info(f"wasm trap: {result['trap']}")
        return 134
    code = result["code"]
    assert isinstance(code, int)
    return code


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


def is_node_artifact(root: Path) -> bool:
    """An Emscripten artifact (python.js + python.wasm, run by node) rather than a WASI one."""
    return (root / "python.js").is_file()


# The web variant of the Emscripten artifact: an ES module and the standard library's file package.
WEB_MODULE = "python.mjs"
WEB_DATA = "python.data"


def is_web_artifact(root: Path) -> bool:
    """An Emscripten artifact of the web variant (python.mjs: loaded through its JS API, not run as a command)."""
    return (root / WEB_MODULE).is_file()


def refuse_web_artifact(root: Path) -> NoReturn:
    raise UsageError(f"{root.name} is a web artifact: it runs in a browser, a web worker or node through its JS API "
                     f"({WEB_MODULE}), not as a command",
                     hint="wasmbuild run and the test suite take WASI and node (emscripten) artifacts: build one "
                     "without --variant web")


def node_command(root: Path, cache_root: Path | None = None) -> list[str]:
    """node with the stack the artifact needs (NODE_STACK_KB; the launcher raises `ulimit -s` to match)."""
    from wasmbuild.node import NODE_MINIMUM, find_node

    node = find_node(NODE_MINIMUM, cache_root=cache_root)
    return [str(node.path), f"--stack-size={NODE_STACK_KB}", str(root / "python.js")]


def _unlimited_stack() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_STACK, (hard, hard))


def run_node_python(root: Path, args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                    stdout: Path | None = None, stderr: Path | None = None, timeout: float | None = None,
                    cache_root: Path | None = None) -> int:
    """Run an Emscripten artifact under node as python.sh does: host paths (NODERAWFS), PYTHONHOME=root."""
    argv = [*node_command(root, cache_root), *args]
    full_env = {**os.environ, "PYTHONHOME": str(root), **(env or {})}
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(stdout, "wb")) if stdout else None
        err = files.enter_context(open(stderr, "wb")) if stderr else None
        try:
            code = call(argv, cwd=cwd, env=full_env, stdout=out, stderr=err, timeout=timeout,
                        preexec_fn=_unlimited_stack)
        except subprocess.TimeoutExpired:
            log.info(f"wasmbuild: the guest ran longer than --timeout {timeout:g} s and was stopped")
            return TIMEOUT_EXIT
    return code if code >= 0 else 128 - code


def run_python(root: Path, args: Sequence[str], cache_root: Path, dirs: Sequence[tuple[Path, str]], *,
               env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
               timeout: float | None = None, max_memory: int | None = None, lib: Path | None = None) -> int:
    """Run the unpacked artifact at `root` as its launcher does, by its target (targets.artifact_target): WASI
    with the given preopens and lib/ (or `lib`) at /lib, Emscripten under node seeing the host's files."""
    from wasmbuild.targets import artifact_target

    return artifact_target(root).run_python(root, args, cache_root, dirs, env=env, stdout=stdout, stderr=stderr,
                                            timeout=timeout, max_memory=max_memory, lib=lib)


def link_tree(src: Path, dest: Path) -> None:
    """A private copy of `src` at `dest` made of hard links (a plain copy across file systems): files the guest
    creates or replaces there (bytecode, test files) are seen by no other run. Files are not written in place by
    the guests that use this (CPython replaces .pyc files by rename)."""
    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(src, dest, symlinks=True, copy_function=link)


def run_artifact(artifact: Path, args: Sequence[str], cache_root: Path, *,
                 dirs: Sequence[tuple[Path, str]] | None = None, env: dict[str, str] | None = None,
                 timeout: float | None = None, max_memory: int | None = None, private_lib: bool = False,
                 engine: str = "auto") -> int:
    """`wasmbuild run`: the current directory as / unless --dir says otherwise. `engine` "api" always runs the
    guest in this process (wasmtime's Python API); "auto" hands a plain run to the wasmtime CLI (exec_wasm). With
    `private_lib`, the guest gets its own linked copy of the standard library (parallel test workers must not see
    each other's writes).
    A `.wasm` file (a bundle: wasmbuild bundle) runs as it is, with the given directories and environment."""
    mounts = list(dirs) if dirs is not None else [(Path.cwd(), "/")]
    for host, _ in mounts:
        if not Path(host).is_dir():
            raise UsageError(f"--dir {host}: not a directory")
    # A plain run (no limits) goes to the pinned wasmtime CLI when it is provisioned: see exec_wasm.
    cli = provisioned_wasmtime(cache_root) if engine == "auto" and timeout is None and max_memory is None \
        and not private_lib else None
    if is_wasm_module(artifact):
        if cli is not None:
            exec_wasm(cli, artifact, [artifact.name, *args], cache_root, dirs=mounts, env=dict(env or {}))
        return run_wasm(artifact, [artifact.name, *args], cache_root, dirs=mounts, env=dict(env or {}),
                        timeout=timeout, max_memory=max_memory)
    root = unpack_artifact(artifact, cache_root)
    if is_web_artifact(root):
        refuse_web_artifact(root)
    if cli is not None and not is_node_artifact(root):
        wasm, argv, wasi_mounts, wasi_env = wasi_python(root, args, mounts, env)
        exec_wasm(cli, wasm, argv, cache_root, dirs=wasi_mounts, env=wasi_env)
    if not private_lib or is_node_artifact(root):  # node guests see the host's files: nothing to map
        return run_python(root, args, cache_root, mounts, env=env, timeout=timeout, max_memory=max_memory)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-lib-", dir=os.environ.get("TMPDIR")) as tmp:
        lib = Path(tmp) / "lib"
        link_tree(root / "lib", lib)
        return run_python(root, args, cache_root, mounts, env=env, timeout=timeout, max_memory=max_memory, lib=lib)
