"""`wasmbuild run|smoke-test`: running an artifact or a bundle (artifact.py), smoke-testing an artifact. Only
what a run needs is imported before the run: a WASI run loads no build module."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from wasmbuild.cli.options import (
    _cache_root,
    _path,
    _positive_seconds,
    _size,
)
from wasmbuild.errors import UsageError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
    r = sub.add_parser("run", help="run a built artifact (archive or directory): wasmbuild run ART -- ARGS",
                       usage="wasmbuild run [options] ARTIFACT [options] -- [PYTHON ARGS...]")
    r.add_argument("artifact", type=_path)
    r.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                   help="preopen a host directory (default: the current directory as /)")
    r.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--inherit-env", action="store_true",
                   help="pass this process's environment to a WASI guest (except PATH, PYTHONHOME, PYTHONPATH)")
    r.add_argument("--cache-dir", type=_path)
    r.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS", help="stop the guest after this long")
    r.add_argument("--max-memory", type=_size, metavar="SIZE",
                   help="the guest's memory limit in bytes; suffixes K, M, G (KiB, MiB, GiB) e.g. 512M")
    r.add_argument("--private-lib", action="store_true",
                   help="give a WASI guest its own writable copy of the standard library (for parallel test "
                   "workers; without it /lib is read-only)")
    r.add_argument("--engine", choices=("auto", "api"), default="auto",
                   help="how a bundle runs: auto hands a run without --timeout/--max-memory to the pinned wasmtime "
                   "CLI when it is in the cache (faster start), api always uses wasmtime's Python API; an artifact "
                   "always runs with the API (its /lib read-only, which the CLI cannot mount)")

    s = sub.add_parser("smoke-test", help="smoke-test a built artifact (archive or directory)")
    s.add_argument("artifact", type=_path)
    s.add_argument("--cache-dir", type=_path)


DIR_HINT = "write --dir HOST (seen as the same path) or --dir HOST::GUEST, e.g. --dir .::/work"


# Host variables that would point a guest at the host's programs or at another Python's library.
INHERIT_SKIP = frozenset({"PATH", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV"})


def cmd_run(args: argparse.Namespace) -> int:
    from wasmbuild.artifact import run_artifact

    env = {}
    if args.inherit_env:
        # The guest gets UTF-8; a value decoded with surrogateescape (a non-UTF-8 host locale) is re-encoded.
        env = {k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
               for k, v in os.environ.items() if k not in INHERIT_SKIP}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE")
        if not name:
            raise UsageError(f"--env {item!r}: empty variable name", hint="write --env NAME=VALUE")
        if "\0" in item:
            raise UsageError(f"--env {item!r}: an environment variable cannot contain a NUL character")
        env[name] = value
    dirs = []
    for item in args.dir:
        host, sep, guest = item.partition("::")
        if not host:
            raise UsageError(f"--dir {item!r}: empty host directory", hint=DIR_HINT)
        if sep and not guest:
            raise UsageError(f"--dir {item!r}: empty guest path after '::'", hint=DIR_HINT)
        if "\0" in item:
            raise UsageError(f"--dir {item!r}: a path cannot contain a NUL character")
        dirs.append((Path(host), guest if sep else host))
    # Only the options that were given: run_artifact grows keyword arguments, callers stay compatible.
    limits = {k: v for k, v in (("timeout", args.timeout), ("max_memory", args.max_memory)) if v is not None}
    if args.private_lib:
        limits["private_lib"] = True
    if args.engine != "auto":
        limits["engine"] = args.engine
    cache_root = _cache_root(args)
    return run_artifact(args.artifact, args.args, cache_root, dirs=dirs or None, env=env, node=_pinned_node(cache_root),
                        **limits)


def _pinned_node(cache_root: Path) -> Callable[[], Path]:
    """node for an Emscripten artifact, as the toolchains find it (provisioning the pinned node if need be); the
    toolchain modules are imported only when a node artifact runs (`wasmbuild run` on WASI imports none)."""
    def find() -> Path:
        from wasmbuild.toolchain.node import pinned_node_finder

        return pinned_node_finder(cache_root)()

    return find


def cmd_smoke_test(args: argparse.Namespace) -> int:
    from wasmbuild.checks.smoke import smoke_test_any

    cache_root = _cache_root(args)
    smoke_test_any(args.artifact, cache_root)
    return 0


COMMANDS = {"run": cmd_run, "smoke-test": cmd_smoke_test}
