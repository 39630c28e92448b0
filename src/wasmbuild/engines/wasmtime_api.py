"""wasmtime's Python API: a WASI module run in this process (`wasmbuild run --engine api`, --timeout,
--max-memory, the regrtest workers' --private-lib runs).

Pitfalls handled here (docs/platform-notes.md, "wasmtime"): an 8 MiB `max_wasm_stack` (what CPython's own runner uses)
aborts the process unless the async stack size is raised first (the wheel has no setter: we call the C
function), and the guest runs on a thread with a big native stack. Compiling the module takes seconds;
it is serialized into the cache keyed by the module's sha256, the wasmtime version and the config.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wasmbuild import cache, log
from wasmbuild.engines import TIMEOUT_EXIT, cache_dir, cache_file
from wasmbuild.errors import RunError
from wasmbuild.files import atomic_write

if TYPE_CHECKING:
    import wasmtime

MAX_WASM_STACK = 8 * 1024 * 1024
ASYNC_STACK = 16 * 1024 * 1024
THREAD_STACK = 256 * 1024 * 1024
CONFIG_ID = f"stack={MAX_WASM_STACK},async={ASYNC_STACK}"
# How long a guest stopped by --timeout may take to come back from a host call (a sleep, a read of stdin) before
# it is given up on: epoch interruption only fires while wasm code runs.
TIMEOUT_GRACE = 1.0


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
    try:
        cache_file(compiled)  # a directory or link left where the compiled module belongs: made again
    except OSError as exc:
        raise RunError(f"cannot use the compiled-module cache {compiled}: {exc.strerror or exc}",
                       hint=f"remove {compiled} or use another --cache-dir") from None
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
    try:
        cache_dir(compiled.parent)  # a file left where the directory belongs: made again
        atomic_write(compiled, bytes(module.serialize()))
    except OSError as exc:
        raise RunError(f"cannot write the compiled module to {compiled}: {exc.strerror or exc}",
                       hint=f"make {compiled.parent} a writable directory (or remove it), or use another "
                       "--cache-dir") from None
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


def run_wasm(wasm: Path, argv: Sequence[str], cache_root: Path, *, dirs: Sequence[tuple[Path, str]] = (),
             env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
             timeout: float | None = None, max_memory: int | None = None, read_only: Collection[str] = (),
             exit_when_stuck: bool = False) -> int:
    """Run `wasm` with `argv` (argv[0] included); return the guest's exit code. The directories in `dirs` whose
    guest path is in `read_only` are preopened read-only (the guest can neither write, create, rename nor remove
    anything in them). `timeout` (seconds) stops the guest through epoch interruption (exit TIMEOUT_EXIT), and
    bounds wall time: a guest still blocked in a host call (a sleep, a read of an open stdin) TIMEOUT_GRACE
    seconds later is given up on: with `exit_when_stuck` (a command that owns its process) the process exits
    TIMEOUT_EXIT at once, else the guest's thread is left behind (a daemon) and TIMEOUT_EXIT is returned.
    `max_memory` (bytes) caps its linear memory (growing past it fails inside the guest: MemoryError in
    Python)."""
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
                wasi.preopen_dir(str(host), guest, fs_mutable=guest not in read_only)
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
            thread.join(TIMEOUT_GRACE)
            if thread.is_alive():  # blocked in a host call: epoch interruption cannot reach it
                return _given_up(timeout, exit_when_stuck)
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


def _given_up(timeout: float, exit_now: bool) -> int:
    """A guest past its --timeout that does not come back from a host call: the message, then either this
    process's end with TIMEOUT_EXIT (its output flushed; the guest's thread cannot be stopped otherwise) or
    TIMEOUT_EXIT for the caller, the thread left behind as a daemon."""
    log.info(f"wasmbuild: the guest ran longer than --timeout {timeout:g} s and was stopped")
    if exit_now:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(TIMEOUT_EXIT)
    return TIMEOUT_EXIT
