"""Command line: `python -m wasmbuild build|run|smoke-test|toolchain|versions`.

Every WasmbuildError is caught here, once: `error: <message>` and its exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from wasmbuild import cache, debian, log
from wasmbuild.download import Sources
from wasmbuild.errors import UsageError, WasmbuildError
from wasmbuild.recipe import available_recipes, project_root, select_recipe
from wasmbuild.targets import TARGET_NAMES, get_target
from wasmbuild.toolchain import ROUTES


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--python", metavar="VERSION", help="CPython version: 3.13 or 3.13.15 (default: newest)")
    p.add_argument("--cache-dir", type=Path, help="cache directory (env WASMBUILD_CACHE_DIR; default "
                   "~/.cache/wasmbuild)")
    p.add_argument("--mirror-dir", type=Path, default=os.environ.get("WASMBUILD_MIRROR_DIR") or None,
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
    p.add_argument("--wasi-sdk-path", type=Path, help="use this WASI SDK (same as WASI_SDK_PATH)")
    p.add_argument("--node", help="node executable for Emscripten (env WASMBUILD_NODE; default: node on PATH)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmbuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build, package and smoke-test CPython for a target")
    b.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    _add_common(b)
    b.add_argument("--dist-dir", type=Path, default=None, help="output directory (default: ./dist)")
    b.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    b.add_argument("--no-smoke-test", action="store_true", help="skip the smoke test of the artifact")

    t = sub.add_parser("toolchain", help="provision a target's toolchain and print its path")
    t.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    _add_common(t)

    r = sub.add_parser("run", help="run a built artifact (archive or directory): wasmbuild run ART -- ARGS")
    r.add_argument("artifact", type=Path)
    r.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                   help="preopen a host directory (default: the current directory as /)")
    r.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--inherit-env", action="store_true",
                   help="pass this process's environment to a WASI guest (except PATH, PYTHONHOME, PYTHONPATH)")
    r.add_argument("--cache-dir", type=Path)
    r.add_argument("args", nargs=argparse.REMAINDER)

    s = sub.add_parser("smoke-test", help="smoke-test a built artifact (archive or directory)")
    s.add_argument("artifact", type=Path)
    s.add_argument("--cache-dir", type=Path)

    bench = sub.add_parser("bench", help="time `-c pass` of a WASI artifact: module compile cold, cached, runs")
    bench.add_argument("artifact", type=Path, nargs="?", help="default: the newest WASI archive in ./dist")
    bench.add_argument("--runs", type=int, default=5)

    ts = sub.add_parser("test", help="run CPython's test suite (regrtest) against the built artifact and compare "
                        "with tests/expectations/<target>-<X.Y>.yaml")
    ts.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    _add_common(ts)
    ts.add_argument("--dist-dir", type=Path, default=None, help="where the artifact is built (default: ./dist)")
    ts.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="parallel workers (regrtest -j)")
    ts.add_argument("--timeout", type=int, default=900, help="per test module, seconds (regrtest --timeout)")
    ts.add_argument("--subset", choices=("all", "ci"), default="all",
                    help="all test modules, or the expectations file's documented CI subset")
    ts.add_argument("--report-dir", type=Path, default=None, help="where results go (default: ./reports)")
    ts.add_argument("tests", nargs="*", help="only these test modules (default: all)")

    m = sub.add_parser("matrix", help="build, smoke-test and test every supported version x target into one dist/ "
                       "(one SHA256SUMS) and print the matrix")
    _add_common(m)
    m.add_argument("--target", action="append", choices=TARGET_NAMES, help="only this target (repeatable)")
    m.add_argument("--dist-dir", type=Path, default=None, help="output directory (default: ./dist)")
    m.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    m.add_argument("--timeout", type=int, default=900, help="per test module, seconds")
    m.add_argument("--subset", choices=("all", "ci"), default="all", help="whole test suites, or the CI subsets")
    m.add_argument("--report-dir", type=Path, default=None, help="where results go (default: ./reports)")

    sub.add_parser("versions", help="list the supported CPython versions and targets")
    return parser


def _sources(args: argparse.Namespace) -> Sources:
    mirror_dir = Path(args.mirror_dir).expanduser().resolve() if args.mirror_dir else None
    if mirror_dir and not mirror_dir.is_dir():
        raise UsageError(f"--mirror-dir {mirror_dir} is not a directory")
    return Sources(mirror_dir=mirror_dir, debian_mirror=debian.resolve_mirror(args.debian_mirror),
                   upstream=not args.offline)


def _cache_root(args: argparse.Namespace) -> Path:
    return cache.ensure_cache_root((args.cache_dir or cache.default_cache_dir()).expanduser().resolve())


def _context(args: argparse.Namespace, target: str, recipe=None):
    from wasmbuild.build import Context

    root = project_root()
    recipe = recipe or select_recipe(root, args.python)
    cache_root = _cache_root(args)
    dist = (getattr(args, "dist_dir", None) or Path.cwd() / "dist").expanduser().resolve()
    ctx = Context(root=root, cache=cache_root, dist=dist, recipe=recipe, target=recipe.target(target),
                  sources=_sources(args), jobs=getattr(args, "jobs", os.cpu_count() or 1),
                  toolchain_route=args.toolchain_route)
    if args.wasi_sdk_path:
        ctx.state["wasi_sdk_path"] = args.wasi_sdk_path
    if args.node:
        ctx.state["node"] = args.node
    return ctx


def cmd_build(args: argparse.Namespace) -> int:
    start = time.monotonic()
    ctx = _context(args, args.target)
    log.info(f"wasmbuild: CPython {ctx.recipe.version} for {ctx.target.triple} (cache {ctx.cache})")
    archive = _build(ctx, args.target, smoke=not args.no_smoke_test)
    log.info(f"done in {log.format_duration(time.monotonic() - start)}: {archive}")
    return 0


def cmd_toolchain(args: argparse.Namespace) -> int:
    ctx = _context(args, args.target)
    with cache.lock(ctx.cache):
        tc = get_target(args.target).provision_toolchain(ctx)
    print(tc.path)
    return 0


# Host variables that would point a guest at the host's programs or at another Python's library.
INHERIT_SKIP = frozenset({"PATH", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "VIRTUAL_ENV"})


def cmd_run(args: argparse.Namespace) -> int:
    from wasmbuild.runner import run_artifact

    argv = args.args[1:] if args.args[:1] == ["--"] else args.args
    cache_root = _cache_root(args)
    env = {}
    if args.inherit_env:
        # The guest gets UTF-8; a value decoded with surrogateescape (a non-UTF-8 host locale) is re-encoded.
        env = {k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
               for k, v in os.environ.items() if k not in INHERIT_SKIP}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--env {item!r}: expected NAME=VALUE")
        env[name] = value
    dirs = []
    for item in args.dir:
        host, sep, guest = item.partition("::")
        dirs.append((Path(host), guest if sep else host))
    return run_artifact(args.artifact, argv, cache_root, dirs=dirs or None, env=env)


def cmd_smoke_test(args: argparse.Namespace) -> int:
    from wasmbuild.smoke import smoke_test_any

    cache_root = _cache_root(args)
    smoke_test_any(args.artifact, cache_root)
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    root = project_root()
    for short in available_recipes(root):
        recipe = select_recipe(root, short)
        print(f"{recipe.version}: {', '.join(f'{n} ({t.triple})' for n, t in recipe.targets.items())}")
    return 0


def _build(ctx, target_name: str, smoke: bool = True) -> Path:
    from wasmbuild.package import package

    target = get_target(target_name)
    with cache.lock(ctx.cache):
        target.provision_toolchain(ctx)
        build = target.build_host(ctx)
        archive = package(ctx, build, target.stage)
    if smoke:
        from wasmbuild.smoke import smoke_test

        smoke_test(archive, ctx.cache, ctx.recipe, ctx.target)
    return archive


def cmd_matrix(args: argparse.Namespace) -> int:
    """Every recipe x target (or --python / --target): build, smoke test, test suite; one row each, all rows run."""
    import json

    from wasmbuild.suite import results_name, test_artifact

    root = project_root()
    versions = [args.python] if args.python else sorted(available_recipes(root),
                                                        key=lambda v: [int(p) for p in v.split(".")])
    report_dir = (args.report_dir or Path.cwd() / "reports").expanduser().resolve()
    rows = []
    start = time.monotonic()
    for version in versions:
        recipe = select_recipe(root, version)
        for target_name in recipe.targets:
            if args.target and target_name not in args.target:
                continue
            row = {"python": recipe.version, "target": target_name, "triple": recipe.targets[target_name].triple}
            t0 = time.monotonic()
            log.info(f"━━ matrix: CPython {recipe.version} for {target_name}")
            results_file = report_dir / f"{results_name(recipe.version, row['triple'])}.json"
            results_file.unlink(missing_ok=True)  # never report an older run's counts
            try:
                ctx = _context(args, target_name, recipe)
                archive = _build(ctx, target_name)
                row["artifact"] = archive.name
                row["sha256"] = cache.sha256_file(archive)
                test_artifact(ctx, archive, report_dir=report_dir, jobs=args.jobs, timeout=args.timeout,
                              subset=args.subset, tests=[])
                row["result"] = "ok"
            except WasmbuildError as exc:
                row["result"] = f"error: {str(exc).splitlines()[0]}"
                log.info(f"error: {exc}")
            if results_file.is_file():
                results = json.loads(results_file.read_text())
                row["tests"] = {"selection": "all" if results["selection"] == "all" else "ci subset",
                                **results["counts"]}
            row["minutes"] = round((time.monotonic() - t0) / 60, 1)
            rows.append(row)
    from wasmbuild.testsuite import write_results

    write_results(report_dir / "matrix.json", {"rows": rows, "subset": args.subset,
                                               "minutes": round((time.monotonic() - start) / 60, 1)})
    log.info("")
    log.info(f"{'CPython':<9} {'target':<11} {'result':<7} {'tests (passed/failed/crashed/skipped)':<40} minutes")
    for r in rows:
        t = r.get("tests")
        counts = f"{t['passed']}/{t['failed']}/{t['crashed']}/{t['skipped']} ({t['selection']})" if t else "-"
        log.info(f"{r['python']:<9} {r['target']:<11} {r['result'][:7]:<7} {counts:<40} {r['minutes']}")
    dist = (args.dist_dir or Path.cwd() / "dist").expanduser().resolve()
    log.info(f"matrix: {report_dir / 'matrix.json'}; artifacts and one SHA256SUMS in {dist}")
    failed = [r for r in rows if r["result"] != "ok"]
    if failed:
        raise WasmbuildError(f"{len(failed)} of {len(rows)} matrix rows failed: "
                             + ", ".join(f"{r['python']} {r['target']}" for r in failed))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from wasmbuild.bench import bench_wasi

    artifact = args.artifact
    if artifact is None:
        found = sorted((Path.cwd() / "dist").glob("cpython-*-wasm32-wasip1.tar.gz"))
        if not found:
            raise UsageError("no WASI archive in ./dist", hint="run `nox -s build-wasi` first or name an artifact")
        artifact = found[-1]
    bench_wasi(artifact, args.runs)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from wasmbuild.suite import test_artifact

    ctx = _context(args, args.target)
    # The artifact under test is the packaged one (built if needed); its smoke test is the build's business.
    archive = _build(ctx, args.target, smoke=False)
    report_dir = (args.report_dir or Path.cwd() / "reports").expanduser().resolve()
    return test_artifact(ctx, archive, report_dir=report_dir, jobs=args.jobs, timeout=args.timeout,
                         subset=args.subset, tests=args.tests)


COMMANDS = {"bench": cmd_bench, "build": cmd_build, "matrix": cmd_matrix, "test": cmd_test,
            "toolchain": cmd_toolchain, "run": cmd_run,
            "smoke-test": cmd_smoke_test, "versions": cmd_versions}


def _terminate(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt  # so `kill` cleans up like Ctrl-C: partial cache entries are removed


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args.command](args)
    except WasmbuildError as exc:
        log.info(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        log.info("interrupted: partial cache entries were removed; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
