"""Smoke test of a built artifact, run from the archive in dist/ (never from the build tree): by the artifact's
kind (artifact.artifact_runtime), the command-line one (run it, import the recipe's modules, a few tests) or,
for a web artifact, its JS API under node. The build command runs it after the build (not the pipeline)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.artifact import Runtime, WebRuntime, artifact_runtime, unpack_artifact
from wasmbuild.errors import SmokeTestError, UsageError
from wasmbuild.process import capture
from wasmbuild.recipe import Recipe, TargetOptions, project_root, select_recipe
from wasmbuild.record import read_record
from wasmbuild.targets import get_target
from wasmbuild.toolchain.node import NODE_MINIMUM, find_node, pinned_node_finder

IMPORT_SWEEP = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def _run(runtime: Runtime, cache_root: Path, args: list[str], work: Path) -> tuple[int, str, str]:
    out, err = work / "stdout.txt", work / "stderr.txt"
    code = runtime.run_python(args, cache_root, [(work, "/")], stdout=out, stderr=err,
                              node=pinned_node_finder(cache_root))
    return code, out.read_text(errors="replace"), err.read_text(errors="replace")


def check_record(archive: Path, root: Path) -> dict:
    """BUILD.json is the archive's first member and describes the python.wasm next to it."""
    if archive.is_file():
        with tarfile.open(archive, "r:*") as tar:
            first = tar.next()
            if first is not None and first.isdir():
                first = tar.next()
            if first is None or not first.name.endswith("/BUILD.json"):
                raise SmokeTestError(f"{archive}: the first member is {first and first.name!r}, not BUILD.json")
    record = read_record(root, archive)
    wasm = record["artifact"]["python.wasm"]
    actual = cache.sha256_file(root / "python.wasm")
    if actual != wasm["sha256"]:
        raise SmokeTestError(f"python.wasm sha256 {actual} does not match BUILD.json ({wasm['sha256']})")
    return record


def smoke_test(archive: Path, cache_root: Path, recipe: Recipe, target: TargetOptions) -> None:
    """The smoke test of the packaged artifact `archive` of `recipe` for `target`, by the artifact's kind."""
    with log.step(f"Smoke-test {archive.name}"):
        root = unpack_artifact(archive, cache_root)
        runtime = artifact_runtime(root)
        if isinstance(runtime, WebRuntime):
            _web_smoke_test(archive, runtime, cache_root, recipe, target)
        else:
            _command_smoke_test(archive, runtime, cache_root, recipe, target)


def _command_smoke_test(archive: Path, runtime: Runtime, cache_root: Path, recipe: Recipe,
                        target: TargetOptions) -> None:
    """An artifact run as a command (WASI, node): sys.version and sys.platform, the recipe's imports, its tests."""
    root = runtime.root
    check_record(archive, root)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-smoke-") as tmp:
        work = Path(tmp)
        (work / "tmp").mkdir()
        start = time.monotonic()
        version_check = "import sys; print(sys.version); print(sys.platform)"
        code, out, err = _run(runtime, cache_root, ["-c", version_check], work)
        lines = out.splitlines()
        if code != 0 or len(lines) < 2:
            raise SmokeTestError(f"python.wasm -c failed (exit {code}):\n{out}{err}")
        platform = runtime.sys_platform
        if not lines[0].startswith(recipe.version + " ") or lines[1] != platform:
            raise SmokeTestError(f"expected CPython {recipe.version} on {platform}, got {lines[0]!r} on "
                                 f"{lines[1]!r}")
        log.info(f"  ✓ {lines[0].split()[0]} on {lines[1]} ({time.monotonic() - start:.2f}s incl. module load)")

        (work / "sweep.py").write_text(IMPORT_SWEEP)
        sweep = [runtime.guest_path(work, "sweep.py"), *target.smoke_imports]
        code, out, err = _run(runtime, cache_root, sweep, work)
        if code != 0:
            raise SmokeTestError(f"import sweep crashed (exit {code}):\n{out}{err}")
        failed = json.loads(out.strip().splitlines()[-1])
        if failed:
            detail = "\n".join(f"    {k}: {v}" for k, v in sorted(failed.items()))
            raise SmokeTestError(
                f"{len(failed)} of {len(target.smoke_imports)} modules failed to import:\n{detail}"
            )
        log.info(f"  ✓ {len(target.smoke_imports)} modules import")

        if target.smoke_tests:
            start = time.monotonic()
            tempdir = runtime.guest_path(work, "tmp")
            argv = ["-m", "test", "--tempdir", tempdir, "-q", *target.smoke_tests]
            code, out, err = _run(runtime, cache_root, argv, work)
            if code != 0:
                raise SmokeTestError(f"python -m test {' '.join(target.smoke_tests)} failed (exit {code}):\n"
                                     f"{out[-3000:]}{err[-3000:]}")
            summary = [line for line in out.splitlines() if line.startswith(("Result:", "Total tests:"))]
            log.info(f"  ✓ -m test {' '.join(target.smoke_tests)}: {'; '.join(summary)} "
                     f"({time.monotonic() - start:.1f}s)")


# The web variant's smoke test: its JS API under node, as a page would use it (python.mjs imported, the module
# created without running main, Python initialised and given code through the exported C functions).
WEB_DRIVER = """// wasmbuild: smoke test of a web artifact under node (node web-smoke.mjs <python.mjs url> <code>)
const [moduleUrl, code] = process.argv.slice(2);
const { default: createPython } = await import(moduleUrl);
const out = [], err = [];
const py = await createPython({ noInitialRun: true, print: (line) => out.push(line),
                                printErr: (line) => err.push(line) });
py._Py_Initialize();
const status = py.ccall('PyRun_SimpleString', 'number', ['string'], [code]);
const finalized = py._Py_FinalizeEx();
process.stdout.write(JSON.stringify({ status, finalized, out, err }) + '\\n');
"""
WEB_CHECK = """
import sys, zlib, sqlite3, json, decimal
print(sys.platform)
print(sys.version.split()[0], sys.prefix)
import importlib
failed = {{}}
for name in {names!r}:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(failed))
"""


def run_web(root: Path, code: str, cache_root: Path, timeout: float = 300) -> dict:
    """Run `code` in the web artifact at `root` through its JS API under node: the driver's JSON (status of
    PyRun_SimpleString, of Py_FinalizeEx, the lines printed to stdout and stderr)."""
    node = find_node(NODE_MINIMUM, cache_root=cache_root)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-web-smoke-") as tmp:
        driver = Path(tmp) / "web-smoke.mjs"
        driver.write_text(WEB_DRIVER)
        try:
            proc = capture([node.path, driver, (root / "python.mjs").as_uri(), code], cwd=tmp, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SmokeTestError(f"python.mjs under node did not finish in {timeout:g} s") from None
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (ValueError, IndexError):
        result = None
    if not isinstance(result, dict):
        raise SmokeTestError(f"python.mjs under node failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
                             f"{proc.stderr[-3000:]}")
    return result


def _web_smoke_test(archive: Path, runtime: Runtime, cache_root: Path, recipe: Recipe, target: TargetOptions) -> None:
    """The web variant: the archive's files and record, then its JS API under node (Python initialised, the
    recipe's modules imported, sys.platform, nothing on stderr)."""
    root = runtime.root
    record = check_record(archive, root)
    for name in ("python.mjs", "python.data"):
        if cache.sha256_file(root / name) != record["artifact"].get(name, {}).get("sha256"):
            raise SmokeTestError(f"{name} does not match BUILD.json's artifact.{name}")
    start = time.monotonic()
    result = run_web(root, WEB_CHECK.format(names=list(target.smoke_imports)), cache_root)
    out, err = result["out"], result["err"]
    if result["status"] != 0 or result["finalized"] != 0 or len(out) < 3 or err:
        raise SmokeTestError(f"Python under python.mjs: PyRun_SimpleString {result['status']}, Py_FinalizeEx "
                             f"{result['finalized']}:\n" + "\n".join([*out, *err])[-3000:])
    platform = runtime.sys_platform
    if out[0] != platform or out[1] != f"{recipe.version} /":
        raise SmokeTestError(f"expected CPython {recipe.version} on {platform} with prefix /, got {out[1]!r} on "
                             f"{out[0]!r}")
    failed = json.loads(out[-1])
    if failed:
        detail = "\n".join(f"    {k}: {v}" for k, v in sorted(failed.items()))
        raise SmokeTestError(f"{len(failed)} of {len(target.smoke_imports)} modules failed to import:\n{detail}")
    log.info(f"  ✓ {recipe.version} on {out[0]} through python.mjs under node, {len(target.smoke_imports)} "
             f"modules import ({time.monotonic() - start:.2f}s incl. module load)")


def smoke_test_any(artifact: Path, cache_root: Path) -> None:
    """Smoke-test an artifact on its own: its BUILD.json says which recipe, target and variant it came from."""
    root = unpack_artifact(artifact, cache_root)
    record = read_record(root, artifact)
    recipe = select_recipe(project_root(), record["python"]["version"])
    target = recipe.target(record["target"]["name"])
    if target.triple != record["target"]["triple"]:
        raise UsageError(f"{artifact}: target {record['target']['triple']} is not this recipe's {target.triple}")
    get_target(target.name, record["target"].get("variant"))  # a variant this wasmbuild does not build is refused
    smoke_test(artifact, cache_root, recipe, target)
