"""The pinned wasmtime CLI (toolchains/host-tools.yaml): `wasmbuild run` hands a plain run to it (exec),
the module precompiled once.

Started through the CLI, a run skips importing wasmtime's Python API (about 30 ms) and loading the module into
this process; `python -m wasmbuild run` then costs little more than the CLI itself (nox -s bench-wasi). The CLI
gets the same engine settings as wasmtime_api.run_wasm (cli_flags).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from wasmbuild import cache
from wasmbuild.engines import cache_dir, cache_file, provisioned_tool, unlimited_stack
from wasmbuild.engines.wasmtime_api import MAX_WASM_STACK
from wasmbuild.errors import RunError


def provisioned_wasmtime(cache_root: Path) -> Path | None:
    """The pinned wasmtime CLI if it is already in the cache for the current host-tools manifest (provisioned by
    `wasmbuild bundle` or `wasmbuild bench`; the pointer is written by hosttools.ensure), else None."""
    return provisioned_tool(cache_root, "wasmtime", "wasmtime")


def cli_flags() -> list[str]:
    """The engine settings of run_wasm, as CLI options (they are part of the precompiled module's key)."""
    return ["-W", f"max-wasm-stack={MAX_WASM_STACK}"]


def precompiled(cli: Path, wasm: Path, cache_root: Path) -> Path:
    """`wasmtime compile` of `wasm` by this CLI with cli_flags(), cached by the module's sha256."""
    key = cache.hash_key({"wasm": cache.sha256_file_memo(wasm, cache_root), "cli": cli.parent.parent.name,
                          "flags": cli_flags()})
    out = cache_root / "wasmtime-cli" / f"{key[:24]}.cwasm"
    try:
        # A directory left where the compiled module belongs, or a file where its directory belongs (a damaged
        # or hand-edited cache): removed and made again, instead of failing on every run.
        cache_dir(out.parent)
        cache_file(out)
    except OSError as exc:
        raise RunError(f"cannot use the compiled-module cache {out}: {exc.strerror or exc}",
                       hint=f"remove {out.parent} or use another --cache-dir") from None
    if out.is_file():
        return out
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        proc = subprocess.run([str(cli), "compile", *cli_flags(), str(wasm), "-o", str(tmp)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RunError(f"{wasm} is not a valid WebAssembly module: {first}",
                           hint="rebuild the artifact, or use a complete archive from dist/")
        try:
            os.replace(tmp, out)
        except OSError as exc:
            raise RunError(f"cannot write the compiled module to {out}: {exc.strerror or exc}",
                           hint=f"remove {out} or use another --cache-dir") from None
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
    unlimited_stack()
    os.execv(command[0], command)
