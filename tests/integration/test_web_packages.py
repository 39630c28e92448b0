"""`wasmbuild install` into the web artifact for real: attrs (pinned with --hash, --require-hashes) into wheels/
with its manifest, the record and the SBOM, the same bytes twice; the npm package of the result loaded under node
with the JavaScript API, which installs the wheel at start-up, and `import attrs`; the facts the web artifact is
resolved for are the ones the node Emscripten artifact of the same build answers when run; MarkupSafe (a C
extension) refused in one line."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.integration.conftest import wasmbuild
from tests.integration.test_browser import NEEDS_CHROMIUM, Page, served
from tests.integration.test_browser import browser as browser  # the fixture: headless chromium

VERSION = "3.13.15"
NAME = f"cpython-{VERSION}-wasm32-emscripten-web"
ATTRS_SHA256 = "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309"
ATTRS_WHEEL = "attrs-26.1.0-py3-none-any.whl"
NODE_SCRIPT = """import { loadPython } from '@wasmbuild/cpython';
const err = [];
const stages = [];
const started = performance.now();
const py = await loadPython({ stdout: () => {}, stderr: (l) => err.push(l), onProgress: (p) => stages.push(p.stage) });
const ms = performance.now() - started;
const r = await py.runPython('import attrs, importlib.metadata as m\\n'
  + '@attrs.define\\nclass P:\\n    x: int\\n'
  + '(attrs.__version__, m.version("attrs"), attrs.__file__, repr(P(1)))');
console.log(JSON.stringify({ packages: py.packages, r, err, ms, stages: [...new Set(stages)] }));
"""


def node() -> str:
    from wasmbuild.cache import default_cache_dir
    from wasmbuild.toolchain.node import NODE_MINIMUM, find_node

    return str(find_node(NODE_MINIMUM, cache_root=default_cache_dir()).path)


@pytest.fixture(scope="module")
def requirements(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("req") / "requirements.txt"
    path.write_text(f"attrs==26.1.0 --hash=sha256:{ATTRS_SHA256}\n")
    return path


@pytest.fixture(scope="module")
def with_attrs(web_dist, requirements, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web-attrs") / f"{NAME}-attrs.tar.gz"
    wasmbuild("install", str(web_dist / f"{NAME}.tar.gz"), "-r", str(requirements), "--require-hashes", "-o", str(out))
    return out


def test_the_wheel_its_manifest_and_the_record(with_attrs):
    with tarfile.open(with_attrs) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(f"{NAME}/wheels/wheels.json").read())  # type: ignore[union-attr]
        record = json.loads(tar.extractfile(f"{NAME}/BUILD.json").read())  # type: ignore[union-attr]
        wheel = tar.extractfile(f"{NAME}/wheels/{ATTRS_WHEEL}").read()  # type: ignore[union-attr]
    assert names[:2] == [NAME, f"{NAME}/BUILD.json"]
    assert sorted(names[2:]) == [f"{NAME}/{m}" for m in ("LICENSE", "python.data", "python.mjs", "python.wasm",
                                                          "wheels", f"wheels/{ATTRS_WHEEL}", "wheels/wheels.json")]
    assert hashlib.sha256(wheel).hexdigest() == ATTRS_SHA256
    assert manifest["format"] == 1
    assert [{k: e[k] for k in ("name", "version", "file", "sha256")} for e in manifest["wheels"]] == [
        {"name": "attrs", "version": "26.1.0", "file": ATTRS_WHEEL, "sha256": ATTRS_SHA256}]
    assert manifest["wheels"][0]["url"].endswith(f"/{ATTRS_WHEEL}")
    (attrs,) = record["artifact"]["packages"]
    assert {k: attrs[k] for k in ("name", "version", "file", "sha256", "wheel", "wheel_sha256", "license")} == {
        "name": "attrs", "version": "26.1.0", "file": ATTRS_WHEEL, "sha256": ATTRS_SHA256, "wheel": ATTRS_WHEEL,
        "wheel_sha256": ATTRS_SHA256, "license": "MIT"}
    assert record["artifact"]["wheels"]["manifest"] == "wheels/wheels.json"
    assert record["target"]["variant"] == "web"
    sbom = json.loads(with_attrs.with_name(f"{NAME}-attrs.cdx.json").read_text())
    assert "pkg:pypi/attrs@26.1.0" in json.dumps(sbom)


def test_the_same_install_gives_the_same_bytes(web_dist, requirements, with_attrs, tmp_path):
    again = tmp_path / with_attrs.name
    wasmbuild("install", str(web_dist / f"{NAME}.tar.gz"), "-r", str(requirements), "--require-hashes", "-o",
              str(again))
    assert again.read_bytes() == with_attrs.read_bytes()


def test_loadpython_installs_the_wheels_and_attrs_imports(with_attrs, tmp_path):
    """Through the npm package of the result (wasmbuild npm-pack carries wheels/), under node."""
    from wasmbuild.archive import safe_extract
    from wasmbuild.npm import NPM_NAME, is_npm_tarball

    dist = tmp_path / "dist"
    wasmbuild("npm-pack", str(with_attrs), "--dist-dir", str(dist))
    (tarball,) = [p for p in dist.iterdir() if is_npm_tarball(p.name)]
    project = tmp_path / "project"
    dest = project / "node_modules" / NPM_NAME
    with tarfile.open(tarball) as tar:
        safe_extract(tar, dest, strip_components=1)
    assert (dest / "wheels" / ATTRS_WHEEL).is_file()
    (project / "t.mjs").write_text(NODE_SCRIPT)
    proc = subprocess.run([node(), "t.mjs"], cwd=project, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["packages"] == [{"name": "attrs", "version": "26.1.0"}]
    version, installed, where, shown = eval(result["r"])  # a tuple's repr
    assert (version, installed, shown) == ("26.1.0", "26.1.0", "P(x=1)")
    assert where == "/lib/python3.13/site-packages/attrs/__init__.py"
    assert result["stages"] == ["download", "init", "ready"] and result["err"] == []
    print(f"loadPython with attrs installed at start-up: {result['ms']:.0f} ms")


@NEEDS_CHROMIUM
def test_the_repl_page_starts_with_attrs(with_attrs, browser):
    """`wasmbuild serve` of the result: the page's worker installs the wheel from wheels/ before its first prompt."""
    with served(with_attrs) as (url, requests):
        browser.get(url)  # type: ignore[attr-defined]
        page = Page(browser)
        page.wait(lambda s: s.get("ready"), 180, "the first prompt")
        lines = page.enter("import attrs; attrs.__version__")
    assert lines[-1] == "'26.1.0'", lines
    got = [line for line in requests if "GET /wheels/" in line]
    assert any("/wheels/wheels.json" in line and " 200 " in line for line in got), requests
    assert any(f"/wheels/{ATTRS_WHEEL}" in line and " 200 " in line for line in got), requests


def test_the_facts_are_the_node_artifacts(web_dist, em_dist, tmp_path):
    from wasmbuild.artifact import unpack_artifact
    from wasmbuild.cache import default_cache_dir
    from wasmbuild.kit import read_sysconfig_vars, sysconfig_module
    from wasmbuild.packages.resolve import target_facts
    from wasmbuild.packages.web_install import web_sysconfig_module, web_target_facts

    cache = default_cache_dir()
    web_root = unpack_artifact(web_dist / f"{NAME}.tar.gz", cache)
    node_root = unpack_artifact(em_dist / f"cpython-{VERSION}-wasm32-emscripten.tar.gz", cache)
    sysdata = web_sysconfig_module(web_root, "3.13", tmp_path, Path(sys.executable))
    node_sysdata = sysconfig_module(node_root / "lib" / "python3.13")
    assert sysdata.name == node_sysdata.name and sysdata.read_bytes() == node_sysdata.read_bytes()
    record = json.loads((web_root / "BUILD.json").read_text())
    assert web_target_facts(record, read_sysconfig_vars(sysdata)) == target_facts(node_root, cache)


def test_a_c_extension_is_refused_in_one_line(web_dist, tmp_path):
    out = tmp_path / "out"
    proc = wasmbuild("install", str(web_dist / f"{NAME}.tar.gz"), "MarkupSafe==3.0.4", "-o", str(out), check=False)
    assert proc.returncode == 14, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: MarkupSafe 3.0.4: markupsafe-3.0.4.tar.gz has a C extension")
    assert errors[0].endswith("the web artifact loads pure-Python wheels only")
    assert "node Emscripten artifact" in proc.stderr and "--allow-pure-fallback" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
