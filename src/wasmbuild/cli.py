"""Command line: `python -m wasmbuild build|run|smoke-test|toolchain|download|versions`.

Every WasmbuildError is caught here, once: `error: <message>` and its exit code. Environment variables that are
set but empty count as unset (as XDG_CACHE_HOME does).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from wasmbuild import cache, log
from wasmbuild.errors import UsageError, WasmbuildError
from wasmbuild.names import ROUTES, TARGET_NAMES, VARIANT_NAMES

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmbuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build, package and smoke-test CPython for a target")
    b.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    b.add_argument("--variant", choices=VARIANT_NAMES,
                   help="how a target with variants is built: emscripten's node (default: python.js for node, "
                   "the host's files) or web (python.mjs, an ES module for browsers, workers and node)")
    _add_common(b)
    b.add_argument("--dist-dir", type=_path, default=None, help="output directory (default: ./dist)")
    b.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)
    b.add_argument("--no-smoke-test", action="store_true", help="skip the smoke test of the artifact")

    t = sub.add_parser("toolchain", help="provision a target's toolchain and print its path")
    t.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    _add_common(t)

    # Python's arguments are everything after the first `--` (main splits them off before argparse runs).
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
                   help="give a WASI guest its own linked copy of the standard library (for parallel test workers)")
    r.add_argument("--engine", choices=("auto", "api"), default="auto",
                   help="how a WASI guest runs: auto hands a run without --timeout/--max-memory to the pinned "
                   "wasmtime CLI when it is in the cache (faster start), api always uses wasmtime's Python API")

    s = sub.add_parser("smoke-test", help="smoke-test a built artifact (archive or directory)")
    s.add_argument("artifact", type=_path)
    s.add_argument("--cache-dir", type=_path)

    bench = sub.add_parser("bench", help="start-up of the WASI artifact and of a pre-initialised hello bundle, side "
                           "by side with native CPython of the same version (numbers printed, never asserted)")
    bench.add_argument("--runs", type=_positive_int, default=10, help="timed runs per row (after one warm-up)")
    _add_common(bench)
    bench.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    bench.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    ts = sub.add_parser("test", help="run CPython's test suite (regrtest) against the built artifact and compare "
                        "with tests/expectations/<target>-<X.Y>.yaml")
    ts.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    _add_common(ts)
    ts.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    ts.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1,
                    help="parallel workers (regrtest -j)")
    ts.add_argument("--timeout", type=_positive_int, default=900,
                    help="per test module, seconds (regrtest --timeout)")
    ts.add_argument("--subset", choices=("all", "ci"), default="all",
                    help="all test modules, or the expectations file's documented CI subset")
    ts.add_argument("--report-dir", type=_path, default=None, help="where results go (default: ./reports)")
    ts.add_argument("tests", nargs="*", help="only these test modules (default: all)")

    m = sub.add_parser("matrix", help="build, smoke-test and test every supported version x target into one dist/ "
                       "(one SHA256SUMS) and print the matrix")
    _add_common(m)
    m.add_argument("--target", action="append", choices=TARGET_NAMES, help="only this target (repeatable)")
    m.add_argument("--dist-dir", type=_path, default=None, help="output directory (default: ./dist)")
    m.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)
    m.add_argument("--timeout", type=_positive_int, default=900, help="per test module, seconds")
    m.add_argument("--subset", choices=("all", "ci"), default="all", help="whole test suites, or the CI subsets")
    m.add_argument("--report-dir", type=_path, default=None, help="where results go (default: ./reports)")

    lk = sub.add_parser("link", help="build C extension modules into an artifact: WASI links a new python.wasm, "
                        "Emscripten adds side modules to lib-dynload/")
    lk.add_argument("artifact", type=_path, help="an artifact archive or directory (built by this wasmbuild)")
    lk.add_argument("--module", action="append", required=True, metavar="[NAME=]FILE.c[,FILE.c...]",
                    help="an extension module's C source(s); its name is the file's stem unless NAME= (repeatable)")
    lk.add_argument("-o", "--output", type=_path, required=True, metavar="OUT",
                    help="the new artifact: a directory, or a .tar.gz archive")
    lk.add_argument("--dev", type=_path, metavar="DEV_ARCHIVE",
                    help="the artifact's -dev archive (default: the one beside the artifact archive)")
    _add_fetch_options(lk)

    bu = sub.add_parser("bundle", help="one self-contained, pre-initialised WASI module of an app: CPython, its "
                        "standard library and the app inside, its imports done")
    bu.add_argument("app", type=_path, help="a script (app.py) or a package directory")
    bu.add_argument("-o", "--output", type=_path, required=True, metavar="APP.wasm")
    bu.add_argument("--module", type=_nonempty, metavar="NAME", help="run this module of the directory (python -m)")
    bu.add_argument("--artifact", type=_path, help="a WASI artifact archive (default: build the --python one)")
    bu.add_argument("--dev", type=_path, metavar="DEV_ARCHIVE",
                    help="the artifact's -dev archive (default: the one beside the artifact archive)")
    bu.add_argument("--no-preinit", action="store_true",
                    help="only embed the files: Python initialises at every start (no snapshot)")
    _add_common(bu)
    bu.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    bu.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    v = sub.add_parser("verify", help="check an artifact archive against its BUILD.json, SHA256SUMS, release.json "
                       "and SBOM beside it; --rebuild rebuilds it in a fresh cache and compares the bytes")
    v.add_argument("artifact", type=_path, help="a cpython-<version>-<triple>.tar.gz archive")
    v.add_argument("--rebuild", action="store_true",
                   help="rebuild it from the recipe its record names (fresh temporary cache) and compare the bytes")
    v.add_argument("--keep", type=_path, metavar="DIR", help="with --rebuild: copy the rebuild's files here when "
                   "they differ")
    _add_fetch_options(v)

    rp = sub.add_parser("reproduce", help="two cold builds (the second as another user, in another directory, "
                        "umask 077, another TZ and locale, another clock with faketime) compared file by file")
    rp.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    rp.add_argument("--user", type=_nonempty, help="the second build's user (default as root: nobody)")
    rp.add_argument("--keep", action="store_true", help="keep both builds' directories")
    _add_common(rp)
    rp.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    dl = sub.add_parser("download", help="fetch a released artifact, check it against the release's index and "
                        "SHA256SUMS, and unpack it (with --dev, its -dev archive too)")
    dl.add_argument("--python", metavar="VERSION", help="CPython version: 3.13 or 3.13.15 (default: the newest the "
                    "release has)")
    dl.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    dl.add_argument("--release", type=_nonempty, metavar="TAG",
                    help="a release of the project's repository (default: the latest); not with --from")
    dl.add_argument("--from", dest="location", type=_nonempty, metavar="URL|DIR",
                    help="a release location: the http(s) base url of the directory holding release.json, or a "
                    "local directory (default: the project's repository, when pyproject.toml names one)")
    dl.add_argument("-o", "--output", type=_path, default=None, metavar="DIR",
                    help="where the archive is kept and unpacked (default: the current directory)")
    dl.add_argument("--dev", action="store_true",
                    help="also the -dev archive (static libraries to link against), unpacked into the same tree")
    dl.add_argument("--cache-dir", type=_path, help="cache directory, for the partial file of an interrupted "
                    "transfer (env WASMBUILD_CACHE_DIR; default ~/.cache/wasmbuild)")

    se = sub.add_parser("serve", help="serve the REPL page (web/) with the web artifact on 127.0.0.1 (built if "
                        "needed) and print its URL")
    se.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    se.add_argument("--artifact", type=_path, help="a web artifact, archive or directory (default: build the "
                    "--python one with --variant web into --dist-dir)")
    _add_common(se)
    se.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    se.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    npm = sub.add_parser("npm-pack", help="the npm package of a web artifact: "
                         "DIST/wasmbuild-cpython-<version>-wasmbuild.<n>.tgz, listed in DIST/SHA256SUMS")
    npm.add_argument("artifact", type=_path, help="a web artifact, archive or directory (nox -s build-emscripten -- "
                     "--variant web)")
    npm.add_argument("--dist-dir", type=_path, default=None, help="output directory (default: ./dist)")
    npm.add_argument("--cache-dir", type=_path)

    sub.add_parser("versions", help="list the supported CPython versions and targets")
    return parser


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


def cmd_build(args: argparse.Namespace) -> int:
    from wasmbuild import pipeline
    from wasmbuild.checks.smoke import smoke_test
    from wasmbuild.targets import get_target

    start = time.monotonic()
    target = get_target(args.target, args.variant)  # a variant the target lacks: refused before anything is written
    ctx = _context(args, args.target)
    variant = f" ({target.variant})" if args.variant else ""
    log.info(f"wasmbuild: CPython {ctx.recipe.version} for {ctx.target.triple}{variant} (cache {ctx.cache})")
    artifact = pipeline.build(ctx, target)
    if not args.no_smoke_test:
        smoke_test(artifact.archive, ctx.cache, ctx.recipe, ctx.target)
    log.info(f"done in {log.format_duration(time.monotonic() - start)}: {artifact.archive}")
    return 0


def cmd_toolchain(args: argparse.Namespace) -> int:
    from wasmbuild.targets import get_target

    ctx = _context(args, args.target)
    with cache.lock(ctx.cache, wait=True):
        tc = get_target(args.target).provision_toolchain(ctx)
    print(tc.path)
    return 0


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


def cmd_link(args: argparse.Namespace) -> int:
    from wasmbuild.link import describe, link, parse_module

    modules = [parse_module(spec) for spec in args.module]
    out = link(args.artifact, modules, args.output, options=_build_options(args), dev=args.dev)
    log.info(describe(out))
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from wasmbuild.bundle import make_bundle

    start = time.monotonic()
    out = args.output.expanduser().resolve()
    record = make_bundle(args.app, out, options=_build_options(args), module=args.module, artifact=args.artifact,
                         python=args.python, dev=args.dev, preinit=not args.no_preinit)
    log.info(f"done in {log.format_duration(time.monotonic() - start)}: {out} ({record['size'] / 1e6:.1f} MB, "
             f"{'pre-initialised' if record['preinit'] else 'not pre-initialised'}; record: "
             f"{out.with_name(out.stem + '.BUNDLE.json').name})")
    log.info(f"run it: wasmtime run {shlex.quote(str(out))} ARGS   or   python -m wasmbuild run {shlex.quote(str(out))}"
             " -- ARGS")
    return 0


def _fetch_options(args: argparse.Namespace) -> FetchOptions:
    """The fetch and toolchain options given (for the builds verify --rebuild and reproduce start)."""
    from wasmbuild.release.verify import FetchOptions

    return FetchOptions(mirror_dir=args.mirror_dir, debian_mirror=args.debian_mirror, wasi_sdk_path=args.wasi_sdk_path,
                        node=args.node, offline=args.offline, toolchain_route=args.toolchain_route)


def cmd_verify(args: argparse.Namespace) -> int:
    from wasmbuild.release.verify import verify

    verify(args.artifact, rebuild=args.rebuild, fetch=_fetch_options(args), keep=args.keep)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from wasmbuild.release.reproduce import reproduce_artifact

    _check_route(args)
    reproduce_artifact(args.target, args.python, jobs=args.jobs, fetch=_fetch_options(args), user=args.user,
                       keep=args.keep)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from wasmbuild.release.client import download_artifact, how_to_run

    installed = download_artifact(source=args.location, release=args.release, python=args.python,
                                  target=args.target, output=args.output, dev=args.dev,
                                  cache_root=lambda: _cache_root(args))
    for line in how_to_run(installed):
        log.info(line)
    print(installed.root)
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from wasmbuild.recipe import available_recipes, load_recipe, project_root

    root = project_root()
    for file in available_recipes(root).values():
        recipe = load_recipe(file, root / "patches")
        print(f"{recipe.version}: {', '.join(f'{n} ({t.triple})' for n, t in recipe.targets.items())}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    """Every recipe x target (or --python / --target): build, smoke test, test suite; one row each, all rows run."""
    from wasmbuild.release.matrix import SuiteOptions, matrix_recipes, run_matrix

    report_dir = _out_dir(args.report_dir, "--report-dir", "reports")
    # Options every row shares are checked once, before any row: a bad one is one error, not one per row.
    options = _build_options(args)
    run_matrix(matrix_recipes(args.python), args.target, options, report_dir=report_dir,
               suite=SuiteOptions(jobs=args.jobs, timeout=args.timeout, subset=args.subset))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Build (or reuse) the WASI artifact of --python; its native build-python is the reference."""
    from wasmbuild.checks.bench import bench
    from wasmbuild.recipe import project_root, select_recipe

    _check_route(args)
    recipe = select_recipe(project_root(), args.python)
    bench(recipe, args.runs, _build_options(args))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from wasmbuild import pipeline
    from wasmbuild.checks import regrtest
    from wasmbuild.targets import get_target

    report_dir = _out_dir(args.report_dir, "--report-dir", "reports")
    ctx = _context(args, args.target)
    target = get_target(args.target)
    # The artifact under test is the packaged one (built if needed); its smoke test is the build's business.
    artifact = pipeline.build(ctx, target)
    run = regrtest.run_suite(ctx, artifact.archive, artifact.build_python.python, report_dir=report_dir,
                             jobs=args.jobs, timeout=args.timeout, subset=args.subset, tests=args.tests)
    run.check()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The web artifact (given, or built as `build --variant web` would) and web/, assembled and served."""
    from wasmbuild.web import serve_repl

    serve_repl(artifact=args.artifact, python=args.python, port=args.port, options=_build_options(args))
    return 0


def cmd_npm_pack(args: argparse.Namespace) -> int:
    from wasmbuild.recipe import project_root
    from wasmbuild.web import npm_pack

    dist = _out_dir(args.dist_dir, "--dist-dir", "dist")
    out = npm_pack(args.artifact, dist=dist, cache_root=_cache_root(args), root=project_root())
    log.info(f"  {out} ({out.stat().st_size / 1e6:.1f} MB), sha256 {cache.sha256_file(out)}")
    print(out)
    return 0


COMMANDS = {"bench": cmd_bench, "build": cmd_build, "matrix": cmd_matrix, "test": cmd_test,
            "toolchain": cmd_toolchain, "run": cmd_run,
            "smoke-test": cmd_smoke_test, "versions": cmd_versions, "link": cmd_link,
            "bundle": cmd_bundle, "verify": cmd_verify, "reproduce": cmd_reproduce, "download": cmd_download,
            "serve": cmd_serve, "npm-pack": cmd_npm_pack}


def _terminate(signum: int, frame: object) -> None:  # noqa: ARG001
    raise KeyboardInterrupt  # so `kill` cleans up like Ctrl-C: partial cache entries are removed


RUN_HINT = "put Python's arguments after --, e.g. wasmbuild run ART -- -c 'print(1)'"


def _parse(argv: list[str]) -> argparse.Namespace:
    """argparse, except that `run` takes its guest's arguments after the first `--` (wasmbuild's own options may
    come before or after the artifact). argparse errors exit (SystemExit 2) with its usage message."""
    parser = _parser()
    if argv[:1] != ["run"]:
        return parser.parse_args(argv)
    head, guest = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    args, extra = parser.parse_known_args(head)
    if extra:
        if guest is None:
            raise UsageError(f"run: unexpected argument{'s' if len(extra) > 1 else ''} {shlex.join(extra)}",
                             hint=RUN_HINT)
        raise UsageError(f"run: unknown option{'s' if len(extra) > 1 else ''} before --: {shlex.join(extra)}",
                         hint="see wasmbuild run --help; Python's own arguments go after --")
    args.args = guest or []
    return args


# Commands that build: each first checks, at once, the host tools wasmbuild cannot provision (hosttools.preflight).
BUILDING = frozenset({"build", "toolchain", "test", "matrix"})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = _parse(argv)
        except SystemExit as exc:  # --help, or argparse's usage error (already printed)
            return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        signal.signal(signal.SIGTERM, _terminate)
        if args.command in BUILDING:
            from wasmbuild.toolchain.hosttools import preflight

            targets = getattr(args, "target", None)
            for target in (targets if isinstance(targets, list) else [targets]) if targets else [None, "emscripten"]:
                preflight(target)
        return COMMANDS[args.command](args)
    except WasmbuildError as exc:
        log.info(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        log.info("interrupted: partial cache entries were removed; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
