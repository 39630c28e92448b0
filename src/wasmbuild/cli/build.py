"""`wasmbuild build|toolchain|test|matrix|bench|versions`: building artifacts, their test suite, the release
matrix, the benchmark, the supported versions."""

from __future__ import annotations

import argparse
import os
import time

from wasmbuild import cache, log
from wasmbuild.cli.options import (
    _add_common,
    _build_options,
    _check_route,
    _context,
    _out_dir,
    _path,
    _positive_int,
)
from wasmbuild.names import TARGET_NAMES, VARIANT_NAMES


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
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

    bench = sub.add_parser("bench", help="start-up of the WASI artifact and of a pre-initialised hello bundle, side "
                           "by side with native CPython of the same version (numbers printed, never asserted)")
    bench.add_argument("--runs", type=_positive_int, default=10, help="timed runs per row (after one warm-up)")
    _add_common(bench)
    bench.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    bench.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    sub.add_parser("versions", help="list the supported CPython versions and targets")


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


def cmd_versions(args: argparse.Namespace) -> int:
    from wasmbuild.recipe import available_recipes, load_recipe, project_root

    root = project_root()
    for file in available_recipes(root).values():
        recipe = load_recipe(file, root / "patches")
        print(f"{recipe.version}: {', '.join(f'{n} ({t.triple})' for n, t in recipe.targets.items())}")
    return 0


COMMANDS = {"build": cmd_build, "toolchain": cmd_toolchain, "test": cmd_test, "matrix": cmd_matrix,
            "bench": cmd_bench, "versions": cmd_versions}
