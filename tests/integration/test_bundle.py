"""`wasmbuild bundle`, for real: the test app (tests/data/bundle_app) bundled on the WASI artifact, run with the
wasmtime CLI and with wasmtime's Python API, no standard library preopened."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, wasmbuild
from tests.integration.test_wasi import NAME
from wasmbuild.bundle import SECTION, read_custom_section
from wasmbuild.engines.wasmtime_api import run_wasm

APP = ROOT / "tests" / "data" / "bundle_app" / "app.py"
PKG = ROOT / "tests" / "data" / "bundle_pkg" / "wbpkg"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bundle(wasi_dist: Path, out: Path, *args: str, app: Path = APP, check: bool = True):
    return wasmbuild("bundle", str(app), "-o", str(out), "--artifact", str(wasi_dist / f"{NAME}.tar.gz"), *args,
                     check=check)


@pytest.fixture(scope="module")
def app_wasm(wasi_dist: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "app.wasm"
    make_bundle(wasi_dist, out)
    return out


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> str:
    """The pinned wasmtime CLI wasmbuild provisions (toolchains/host-tools.yaml)."""
    from wasmbuild import cache
    from wasmbuild.download import Sources
    from wasmbuild.toolchain import hosttools

    tool = hosttools.ensure(["wasmtime"], ROOT, cache.default_cache_dir(), Sources())[0]
    return str(tool.path("wasmtime"))


def run_cli(cli: str, wasm: Path, *args: str, options: tuple[str, ...] = (), cwd: Path | None = None):
    import subprocess

    return subprocess.run([cli, "run", *options, str(wasm), *args], capture_output=True, text=True, cwd=cwd)


def test_the_bundle_runs_with_the_plain_cli_and_sees_the_runs_state(app_wasm: Path, cli: str, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("from the host\n")
    options = ("--env", "WB_APP_ENV=production", "--env", "WB_APP_FILE=/data/input.txt", "--dir", f"{data}::/data")
    before = time.time()
    first = run_cli(cli, app_wasm, "alice", "--flag", options=options)
    after = time.time()
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["greeting"] == "hello, alice" and report["argv"] == ["alice", "--flag"]
    assert report["env"] == "production" and report["file"] == "from the host"
    assert before - 1 <= report["time"] <= after + 1  # the run's clock, not the bundle's
    assert report["mean"] == 2.5 and report["cwd"] == "/"
    # json, datetime and the app's own module were imported at bundle time; statistics only now.
    assert report["imported_at_start"] == ["datetime", "greeting", "json"]
    second = json.loads(run_cli(cli, app_wasm, "bob", options=options).stdout)
    assert second["random"] != report["random"]  # re-seeded per run
    assert second["argv"] == ["bob"]
    # No environment, no directory: nothing of the first run leaks into the next.
    bare = json.loads(run_cli(cli, app_wasm).stdout)
    assert bare["env"] is None and "file" not in bare and bare["argv"] == []
    assert run_cli(cli, app_wasm, "--exit-3").returncode == 3


def test_the_bundle_runs_under_wasmtimes_python_api_without_a_stdlib_preopen(app_wasm: Path, tmp_path: Path):
    out = tmp_path / "out.txt"
    status = run_wasm(app_wasm, ["app.wasm", "carol"], tmp_path / "cache", dirs=[], env={"WB_APP_ENV": "api"},
                      stdout=out)
    assert status == 0
    report = json.loads(out.read_text())
    assert report["greeting"] == "hello, carol" and report["env"] == "api"
    proc = wasmbuild("run", str(app_wasm), "--env", "WB_APP_ENV=run", "--", "dave", cwd=tmp_path)
    assert json.loads(proc.stdout)["argv"] == ["dave"]


def test_the_bundle_is_deterministic_and_carries_its_record(app_wasm: Path, wasi_dist: Path, tmp_path: Path):
    again = tmp_path / "again.wasm"
    make_bundle(wasi_dist, again)
    assert sha256(again) == sha256(app_wasm)
    record = json.loads(read_custom_section(app_wasm.read_bytes(), SECTION))
    assert record == json.loads(app_wasm.with_name("app.BUNDLE.json").read_text())
    assert record["artifact"]["build_json_sha256"] == sha256(wasi_dist / f"{NAME}.BUILD.json")
    assert record["preinit"] is True and record["app"]["main"] == "/app/app.py"
    assert {f["path"]: f["sha256"] for f in record["app"]["files"]} == {
        "/app/app.py": sha256(APP), "/app/greeting.py": sha256(APP.with_name("greeting.py"))}
    assert set(record["tools"]) == {"wasi-sdk", "wasmtime"}


def test_no_preinit_and_a_package_app(wasi_dist: Path, cli: str, tmp_path: Path):
    plain = tmp_path / "plain.wasm"
    make_bundle(wasi_dist, plain, "--no-preinit")
    report = json.loads(run_cli(cli, plain, "eve").stdout)
    assert report["greeting"] == "hello, eve" and report["imported_at_start"] == []  # nothing done in advance
    pkg = tmp_path / "pkg.wasm"
    make_bundle(wasi_dist, pkg, app=PKG)
    proc = run_cli(cli, pkg, "x", "y")
    assert proc.returncode == 0 and proc.stdout.strip() == "WBPKG 1.0 X Y"


@pytest.mark.parametrize(("source", "expected"), [
    ("import json\ndef broken(:\n    pass\n", "SyntaxError"),
    ("import json\nimport no_such_module_for_wasmbuild\n", "No module named 'no_such_module_for_wasmbuild'"),
])
def test_an_app_that_fails_at_bundle_time_leaves_no_output(wasi_dist: Path, tmp_path: Path, source, expected):
    app = tmp_path / "bad.py"
    app.write_text(source)
    out = tmp_path / "bad.wasm"
    proc = make_bundle(wasi_dist, out, app=app, check=False)
    assert proc.returncode == 7, proc.stderr
    assert expected in proc.stderr and "/app/bad.py" in proc.stderr and "Traceback (most recent" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py"]


def spaced_cache(tmp_path: Path) -> Path:
    """A cache directory with a space in its path holding the default cache's provisioned tools (hard links:
    nothing is downloaded or built again)."""
    import os
    import shutil

    from wasmbuild import cache

    source, dest = cache.default_cache_dir(), tmp_path / "a cache"
    dest.mkdir()
    for name in ("toolchains", "tools", "downloads", "wasmtime"):
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, symlinks=True, copy_function=os.link)
    return dest


def test_import_time_entropy_is_redrawn_or_refused_and_paths_may_have_spaces(wasi_dist: Path, cli: str,
                                                                             tmp_path: Path):
    app_dir, out_dir = tmp_path / "app dir", tmp_path / "out dir"
    app_dir.mkdir()
    out_dir.mkdir()
    (app_dir / "app.py").write_text("import tokens\nprint(tokens.R.random(), tokens.FIXED)\n")
    (app_dir / "tokens.py").write_text("import random\nR = random.Random()\nFIXED = random.Random(5).random()\n")
    (app_dir / "secret.py").write_text("import os\nKEY = os.urandom(16)\n")
    (app_dir / "bad.py").write_text("import secret\nprint(secret.KEY.hex())\n")
    cache_dir = ("--cache-dir", str(spaced_cache(tmp_path)))
    make_bundle(wasi_dist, out_dir / "app.wasm", *cache_dir, app=app_dir / "app.py")
    runs = [run_cli(cli, out_dir / "app.wasm").stdout.split() for _ in range(2)]
    assert runs[0][0] != runs[1][0]  # random.Random() made at import: re-seeded at every start
    assert runs[0][1] == runs[1][1] == str(__import__("random").Random(5).random())  # an explicit seed stays
    record = json.loads((out_dir / "app.BUNDLE.json").read_text())
    assert [f["path"] for f in record["app"]["files"]] == ["/app/app.py", "/app/tokens.py"]  # not secret.py
    proc = make_bundle(wasi_dist, out_dir / "bad.wasm", *cache_dir, app=app_dir / "bad.py", check=False)
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    assert "drew 16 bytes of entropy at bundle time (/app/bad.py, line 1 (import secret)" in proc.stderr
    assert "--allow-frozen-entropy" in proc.stderr and not (out_dir / "bad.wasm").exists()
    make_bundle(wasi_dist, out_dir / "bad.wasm", *cache_dir, "--allow-frozen-entropy", app=app_dir / "bad.py")
    assert json.loads((out_dir / "bad.BUNDLE.json").read_text())["frozen_entropy"]["bytes"] == 16


# --- third-party packages: the artifact's site-packages in the bundle -------------------------------------------

SITE_PACKAGE = {  # a hand-written installed distribution, as `wasmbuild install` leaves one
    "wbdemo/__init__.py": "import importlib.metadata\n\nVERSION = importlib.metadata.version('wb-demo')  # at import\n"
                          "\n\ndef upper(text):\n    return text.upper()\n",
    "wbdemo/late.py": "LATE = 'imported at run time'\n",
    "wbdemo/hello.txt": "hello from wbdemo\n",
    "wbdemo/data/greeting.txt": "greetings, data\n",
    "wbdemo/templates/page.html": "<p>{name}</p>\n",
    "wbdemo/py.typed": "",
    "wb_demo-0.3.dist-info/METADATA": "Metadata-Version: 2.1\nName: wb-demo\nVersion: 0.3\n"
                                      "Summary: wasmbuild's bundle test distribution\n",
    "wb_demo-0.3.dist-info/entry_points.txt": "[wbdemo.plugins]\nupper = wbdemo:upper\n",
    "wb_demo-0.3.dist-info/RECORD": "wbdemo/__init__.py,,\nwbdemo/hello.txt,,\nwb_demo-0.3.dist-info/METADATA,,\n",
}
SITE_APP = '''\
import importlib.metadata
import importlib.resources
import importlib.util
import json
import os
import pkgutil
import sys
import zipimport

import wbdemo
import apppkg


def main():
    from wbdemo import late  # not imported at bundle time: a code object served at run time

    spec = importlib.util.find_spec("wbdemo")
    root = next(iter(spec.submodule_search_locations)) + "/templates"  # as Jinja's PackageLoader does
    prefix = root[len(spec.loader.archive):].lstrip("/") + "/"
    plugins = importlib.metadata.entry_points(group="wbdemo.plugins")
    print(json.dumps({
        "files": importlib.resources.files("wbdemo").joinpath("data/greeting.txt").read_text(),
        "read_text": importlib.resources.read_text("wbdemo", "hello.txt"),
        "pkgutil": pkgutil.get_data("wbdemo", "data/greeting.txt").decode(),
        "get_data": wbdemo.__loader__.get_data(os.path.join(os.path.dirname(wbdemo.__file__), "hello.txt")).decode(),
        "templates": sorted(n[len(prefix):] for n in spec.loader._get_files() if n.startswith(prefix)),
        "template": spec.loader.get_data(root + "/page.html").decode(),
        "zipimporter": isinstance(spec.loader, zipimport.zipimporter),
        "version": importlib.metadata.version("wb-demo"),
        "version_at_import": wbdemo.VERSION,
        "summary": importlib.metadata.metadata("wb_demo")["Summary"],
        "distributions": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()),
        "entry_points": [ep.name for ep in plugins],
        "plugin": plugins["upper"].load()("x"),
        "late": late.LATE,
        "app_data": importlib.resources.files("apppkg").joinpath("config.json").read_text(),
        "file": wbdemo.__file__,
    }))


main()
'''


@pytest.fixture(scope="module")
def site_artifact(wasi_dist: Path, tmp_path_factory) -> Path:
    """A copy of the WASI artifact (unpacked, as the cache holds it) with SITE_PACKAGE in its site-packages."""
    import shutil

    from wasmbuild import cache
    from wasmbuild.artifact import unpack_artifact

    cached = unpack_artifact(wasi_dist / f"{NAME}.tar.gz", cache.default_cache_dir())
    root = tmp_path_factory.mktemp("site-artifact") / NAME
    shutil.copytree(cached, root, symlinks=True)
    for path in (root, *root.rglob("*")):  # the cached tree is read-only
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    site = root / "lib" / "python3.13" / "site-packages"
    for rel, text in SITE_PACKAGE.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    return root


def test_a_bundle_carries_site_packages_and_serves_their_data_and_metadata(site_artifact: Path, wasi_dist: Path,
                                                                          cli: str, tmp_path: Path):
    app_dir = tmp_path / "app"
    (app_dir / "apppkg").mkdir(parents=True)
    (app_dir / "app.py").write_text(SITE_APP)
    (app_dir / "apppkg" / "__init__.py").write_text("")
    (app_dir / "apppkg" / "config.json").write_text('{"app": "data"}')
    out = tmp_path / "site.wasm"
    wasmbuild("bundle", str(app_dir / "app.py"), "-o", str(out), "--artifact", str(site_artifact),
              "--dev", str(wasi_dist / f"{NAME}-dev.tar.gz"))
    proc = run_cli(cli, out, cwd=tmp_path)  # no directory preopened: everything comes from the module
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report == {
        "files": "greetings, data\n", "read_text": "hello from wbdemo\n", "pkgutil": "greetings, data\n",
        "get_data": "hello from wbdemo\n", "templates": ["page.html"], "template": "<p>{name}</p>\n",
        "zipimporter": True, "version": "0.3", "version_at_import": "0.3",
        "summary": "wasmbuild's bundle test distribution", "distributions": ["wb-demo"],
        "entry_points": ["upper"], "plugin": "X", "late": "imported at run time", "app_data": '{"app": "data"}',
        "file": "/lib/python3.13/site-packages/wbdemo/__init__.py"}
    record = json.loads(out.with_name("site.BUNDLE.json").read_text())
    assert record["packages"] == [{"name": "wb-demo", "version": "0.3"}]
    assert record["site_packages"] == {"modules": 4, "files": 7, "compiled": 2}  # + 2 namespace directories
    assert "/app/apppkg/config.json" in [f["path"] for f in record["app"]["files"]]


def test_site_packages_compile_deterministically_with_the_artifacts_python(site_artifact: Path, tmp_path: Path):
    from wasmbuild import bundle, cache

    site = bundle.site_packages(site_artifact / "lib" / "python3.13")
    runs = [bundle.compile_sources(site_artifact, site.sources, cache.default_cache_dir(), tmp_path / "log")
            for _ in range(2)]
    assert runs[0] == runs[1] and set(runs[0]) == {"/lib/python3.13/site-packages/wbdemo/__init__.py",
                                                    "/lib/python3.13/site-packages/wbdemo/late.py"}
    # The artifact's marshal format, which this Python (3.11 or later) reads: the code object's names survive.
    assert b"/lib/python3.13/site-packages/wbdemo/late.py" in runs[0]["/lib/python3.13/site-packages/wbdemo/late.py"]
