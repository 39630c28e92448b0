"""What every command line shares: argument types (a bad value is an argparse usage error, exit 2, naming the
option), the fetch options, and turning them into the library's values (Sources, BuildOptions, Context,
FetchOptions) with every check done before the cache directory is made."""

from __future__ import annotations

import argparse
import math
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from wasmbuild import cache
from wasmbuild.errors import UsageError
from wasmbuild.names import ROUTES

# Heavy modules (the pipeline, the downloader, recipes, targets) are imported by the commands that use them:
# `wasmbuild run` imports only artifact.py and the engines (tests/unit/test_run_imports.py checks it).
if TYPE_CHECKING:
    from wasmbuild.download import Sources
    from wasmbuild.recipe import Recipe
    from wasmbuild.release.verify import FetchOptions
    from wasmbuild.steps import BuildOptions, Context

# --- argument types: a bad value is an argparse usage error (exit 2) naming the option -----------------------


def _path(text: str) -> Path:
    """A path option: not empty (Path("") would silently mean the current directory)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r}: a path cannot contain a NUL character")
    return Path(text)


def _nonempty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("empty value")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _port(text: str) -> int:
    """A TCP port, 0 for a free one."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 (any free port) to 65535, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


SIZE_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes from '1048576', '512M', '1.5GiB' (K/M/G and KiB/MiB/GiB are powers of 1024). ValueError if not > 0."""
    m = _SIZE.match(text)
    if not m or m[2].lower() not in SIZE_UNITS:
        raise ValueError(f"expected a size in bytes, optionally with a suffix K, M, G, KiB, MiB or GiB (e.g. 512M), "
                         f"got {text!r}")
    value = int(Decimal(m[1]) * SIZE_UNITS[m[2].lower()])
    if value <= 0:
        raise ValueError(f"expected a positive size, got {text!r}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", metavar="VERSION", help="CPython version: 3.13 or 3.13.15 (default: newest)")
    _add_fetch_options(p)


def _add_fetch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=_path, help="cache directory (env WASMBUILD_CACHE_DIR; default "
                   "~/.cache/wasmbuild)")
    p.add_argument("--mirror-dir", type=_path, default=None,
                   help="a local directory holding input files by name, tried after the upstream url "
                   "(env WASMBUILD_MIRROR_DIR)")
    p.add_argument("--debian-mirror", metavar="URL",
                   help="base url of a Debian archive (env WASMBUILD_DEBIAN_MIRROR; default: read from apt's "
                   "configuration)")
    p.add_argument("--offline", action="store_true",
                   help="never try upstream urls: only the cache, --mirror-dir and the Debian mirror")
    p.add_argument("--toolchain-route", choices=ROUTES, default=os.environ.get("WASMBUILD_TOOLCHAIN_ROUTE", "auto"),
                   help="how to get the toolchain: upstream release, Debian packages, a local path "
                   "(WASI_SDK_PATH), or auto (release, then Debian)")
    p.add_argument("--wasi-sdk-path", type=_path, help="use this WASI SDK (same as WASI_SDK_PATH)")
    p.add_argument("--node", type=_nonempty,
                   help="node executable for Emscripten (env WASMBUILD_NODE; default: node on PATH)")


def _sources(args: argparse.Namespace) -> Sources:
    from wasmbuild.download import Sources
    from wasmbuild.toolchain import debian

    if args.mirror_dir is not None:
        mirror_dir, origin = args.mirror_dir.expanduser().resolve(), "--mirror-dir"
    elif env := os.environ.get("WASMBUILD_MIRROR_DIR"):
        mirror_dir, origin = Path(env).expanduser().resolve(), "WASMBUILD_MIRROR_DIR"
    else:
        mirror_dir = origin = None
    if mirror_dir and not mirror_dir.is_dir():
        what = "is a file, not a directory" if mirror_dir.exists() else "does not exist"
        raise UsageError(f"{origin} {mirror_dir} {what}",
                         hint=f"{origin} names a local directory holding input files by name")
    return Sources(mirror_dir=mirror_dir, debian_mirror=debian.resolve_mirror(args.debian_mirror),
                   upstream=not args.offline)


def _cache_root(args: argparse.Namespace) -> Path:
    if args.cache_dir is not None:
        root, origin = args.cache_dir, "--cache-dir"
    else:
        root = cache.default_cache_dir()
        origin = "WASMBUILD_CACHE_DIR" if os.environ.get("WASMBUILD_CACHE_DIR") else "the default cache directory"
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{origin} {root} is a file, not a directory",
                         hint="name a directory (it is created if missing)")
    try:
        return cache.ensure_cache_root(root)
    except OSError as exc:
        raise UsageError(f"{origin} {root}: cannot create the cache there: {exc.strerror or exc}",
                         hint="name a directory you can write to") from None


def _out_dir(value: Path | None, option: str, default: str) -> Path:
    """--dist-dir / --report-dir (or ./dist, ./reports): a directory, or a path where one can be made."""
    path = (value or Path.cwd() / default).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a directory")
    return path


def _check_route(args: argparse.Namespace) -> None:
    if args.toolchain_route not in ROUTES:  # the default comes from the environment, which argparse never checks
        raise UsageError(f"WASMBUILD_TOOLCHAIN_ROUTE={args.toolchain_route}: not a toolchain route",
                         hint=f"use one of: {', '.join(ROUTES)}")


def _build_options(args: argparse.Namespace) -> BuildOptions:
    """The build options the command line gives (checked: a bad one is refused before the cache is made)."""
    from wasmbuild.recipe import project_root
    from wasmbuild.steps import BuildOptions

    _check_route(args)
    sources = _sources(args)
    dist = _out_dir(getattr(args, "dist_dir", None), "--dist-dir", "dist")
    return BuildOptions(root=project_root(), cache=_cache_root(args), dist=dist, sources=sources,
                        jobs=getattr(args, "jobs", os.cpu_count() or 1), toolchain_route=args.toolchain_route,
                        wasi_sdk_path=args.wasi_sdk_path, node=args.node)


def _context(args: argparse.Namespace, target: str, recipe: Recipe | None = None) -> Context:
    from wasmbuild.recipe import project_root, select_recipe

    _check_route(args)
    recipe = recipe or select_recipe(project_root(), args.python)
    recipe.target(target)  # every check before the cache directory is made: a bad option leaves nothing behind
    return _build_options(args).context(recipe, target)


def _fetch_options(args: argparse.Namespace) -> FetchOptions:
    """The fetch and toolchain options given (for the builds verify --rebuild and reproduce start)."""
    from wasmbuild.release.verify import FetchOptions

    return FetchOptions(mirror_dir=args.mirror_dir, debian_mirror=args.debian_mirror, wasi_sdk_path=args.wasi_sdk_path,
                        node=args.node, offline=args.offline, toolchain_route=args.toolchain_route)
