"""`wasmbuild install` into a web artifact (packages/web_install.py) without the network or a build: the facts table
(what the node Emscripten artifact of the same build answers), the sysconfig data read out of python.data through
file_packager's table in python.mjs, what is refused (platform wheels, sdists with C sources), the wheels/
manifest; wheels/ carried by the npm package and `wasmbuild serve`; the loader (web/wasmbuild-python.mjs) reading
the manifest under node, with a stand-in for python.mjs."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import py_compile
import shutil
import subprocess
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.wheels import make_wheel

from wasmbuild import npm, serve
from wasmbuild.errors import ArchiveError, PackageError
from wasmbuild.packages import web_install as web
from wasmbuild.packages.resolve import Pin, wheel_tag_platform
from wasmbuild.packages.wheels import Wheel, metadata_license, wheel_metadata

ROOT = Path(__file__).resolve().parents[2]
LOADER = ROOT / "web" / "wasmbuild-python.mjs"
NODE = shutil.which("node")
SHA = "a" * 64
RECORD = {"python": {"version": "3.13.15"}, "toolchain": {"name": "emscripten", "version": "3.1.69"},
          "target": {"name": "emscripten", "triple": "wasm32-emscripten", "variant": "web"}}
# What the node Emscripten artifact of CPython 3.13.15 (Emscripten 3.1.69) answered to resolve.FACTS_CODE when run
# (resolve.target_facts, 2026-12-08); tests/integration/test_web_packages.py compares with a live run.
NODE_FACTS = {"sys_platform": "emscripten", "os_name": "posix", "platform_system": "Emscripten",
              "platform_machine": "wasm32", "platform_release": "3.1.69", "platform_version": "#1",
              "platform": "emscripten-3.1.69-wasm32", "multiarch": "wasm32-emscripten", "python": "3.13.15",
              "ext_suffix": ".cpython-313-wasm32-emscripten.so", "cache_tag": "cpython-313"}
SYSCONFIG = "build_time_vars = {'EXT_SUFFIX': '.cpython-313-wasm32-emscripten.so', 'MULTIARCH': 'wasm32-emscripten'}\n"


def test_the_facts_table_is_what_the_node_artifact_answers():
    facts = web.web_target_facts(RECORD, {"EXT_SUFFIX": ".cpython-313-wasm32-emscripten.so"})
    assert facts == NODE_FACTS
    assert wheel_tag_platform(facts) == "emscripten_3_1_69_wasm32"
    other = web.web_target_facts({**RECORD, "python": {"version": "3.12.9"}, "toolchain": {"name": "emscripten",
                                                                                          "version": "4.0.1"}}, {})
    assert other["platform"] == "emscripten-4.0.1-wasm32" and other["cache_tag"] == "cpython-312"
    assert other["ext_suffix"] == ".cpython-312-wasm32-emscripten.so"  # the sysconfig data's, else the known form
    with pytest.raises(ArchiveError, match="not an Emscripten version"):
        web.web_target_facts({**RECORD, "toolchain": {"name": "wasi-sdk", "version": "25"}}, {})


def file_package(root: Path, files: dict[str, bytes], *, minified: bool = True, size: int | None = None) -> Path:
    """A stand-in web artifact: python.data holding `files` end to end, python.mjs with file_packager's table."""
    root.mkdir(parents=True, exist_ok=True)
    entries, offset, data = [], 0, b""
    for name, content in files.items():
        entries.append((name, offset, offset + len(content)))
        offset += len(content)
        data += content
    (root / "python.data").write_bytes(data)
    if minified:
        table = ",".join(f'{{filename:"{n}",start:{s},end:{e}}}' for n, s, e in entries)
        text = f"loadPackage({{files:[{table}],remote_package_size:{size if size is not None else len(data)}}})"
    else:
        table = ", ".join(f'{{"filename": "{n}", "start": {s}, "end": {e}}}' for n, s, e in entries)
        text = f'loadPackage({{"files": [{table}], "remote_package_size": {size if size is not None else len(data)}}})'
    (root / "python.mjs").write_text(f"var x=1;function loadPackage(metadata){{}}\n{text};\nexport default 1;\n")
    return root


@pytest.mark.parametrize("minified", [True, False])
def test_the_sysconfig_data_is_read_out_of_python_data(tmp_path, minified):
    root = file_package(tmp_path / "art", {"/lib/python3.13/abc.py": b"# abc\n",
                                           "/lib/python3.13/lib-dynload/.empty": b"",
                                           "/lib/python3.13/_sysconfigdata__emscripten_wasm32-emscripten.py":
                                               SYSCONFIG.encode(),
                                           "/lib/python3.13/json/_sysconfigdata_x.py": b"not this\n",
                                           "/lib/python3.13/zipfile.py": b"# zip\n"}, minified=minified)
    out = web.web_sysconfig_module(root, "3.13", tmp_path / "out", Path("/nonexistent/python"))
    assert out.name == "_sysconfigdata__emscripten_wasm32-emscripten.py" and out.read_text() == SYSCONFIG
    assert web.file_package_table(root / "python.mjs", root / "python.data")["/lib/python3.13/zipfile.py"] == (
        len(SYSCONFIG) + 6 + 9, len(SYSCONFIG) + 6 + 9 + 6)


def test_a_sourceless_sysconfig_module_is_turned_back_into_source(tmp_path):
    import sys

    source = tmp_path / "_sysconfigdata__emscripten_wasm32-emscripten.py"
    source.write_text(SYSCONFIG)
    pyc = Path(py_compile.compile(str(source), cfile=str(tmp_path / "x.pyc"), doraise=True))
    root = file_package(tmp_path / "art", {"/lib/python3.13/_sysconfigdata__emscripten_wasm32-emscripten.pyc":
                                           pyc.read_bytes()})
    out = web.web_sysconfig_module(root, "3.13", tmp_path / "out", Path(sys.executable))
    assert out.name == source.name
    assert out.read_text().startswith("build_time_vars = {'EXT_SUFFIX': '.cpython-313-wasm32-emscripten.so'")


def test_a_table_that_does_not_describe_python_data_is_refused(tmp_path):
    files = {"/lib/python3.13/_sysconfigdata__emscripten_wasm32-emscripten.py": SYSCONFIG.encode()}
    with pytest.raises(ArchiveError, match="does not describe python.data"):
        web.web_sysconfig_module(file_package(tmp_path / "a", files, size=5), "3.13", tmp_path / "o", Path("x"))
    root = file_package(tmp_path / "b", files)
    (root / "python.data").write_bytes(b"x" * 3)  # another build's python.data
    with pytest.raises(ArchiveError, match="does not describe python.data"):
        web.web_sysconfig_module(root, "3.13", tmp_path / "o", Path("x"))
    (root / "python.mjs").write_text("export default 1;\n")  # no file package
    with pytest.raises(ArchiveError, match="0 entries"):
        web.web_sysconfig_module(root, "3.13", tmp_path / "o", Path("x"))
    root = file_package(tmp_path / "c", {"/lib/python3.13/os.py": b"x"})
    with pytest.raises(ArchiveError, match="expected one /lib/python3.13/_sysconfigdata_"):
        web.web_sysconfig_module(root, "3.13", tmp_path / "o", Path("x"))


def pin(name: str, version: str, filename: str) -> Pin:
    return Pin(name, version, f"https://index.example/{filename}", SHA, filename, True, None)


def options(**kw) -> SimpleNamespace:
    return SimpleNamespace(allow_pure_fallback=False, build_timeout=60.0, **kw)


def test_pure_wheels_pass_platform_wheels_and_c_sdists_are_refused_in_one_line(tmp_path):
    wheel = make_wheel(tmp_path, "attrs", "26.1.0", {"attrs/__init__.py": "x = 1\n"})
    assert web.is_pure(wheel.name) and web.is_pure("six-1.17.0-py2.py3-none-any.whl")
    assert not web.is_pure("markupsafe-3.0.4-cp313-cp313-emscripten_3_1_69_wasm32.whl")
    kw = {"tools": None, "env": None, "cache_root": tmp_path, "index": None, "logs": tmp_path, "work": tmp_path / "w"}
    got = web.web_wheel(pin("attrs", "26.1.0", wheel.name), wheel, options=options(), **kw)
    assert got.path == wheel and got.built is None
    plat = tmp_path / "markupsafe-3.0.4-cp313-cp313-emscripten_3_1_69_wasm32.whl"
    plat.write_bytes(b"PK")
    with pytest.raises(PackageError, match="MarkupSafe 3.0.4: .* is a platform wheel \\(emscripten_3_1_69_wasm32\\): "
                                           "the web artifact loads pure-Python wheels only"):
        web.web_wheel(pin("MarkupSafe", "3.0.4", plat.name), plat, options=options(), **kw)
    src = tmp_path / "markupsafe-3.0.4"
    (src / "src" / "markupsafe").mkdir(parents=True)
    (src / "src" / "markupsafe" / "_speedups.c").write_text("int x;\n")
    (src / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    sdist = tmp_path / "markupsafe-3.0.4.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    with pytest.raises(PackageError) as exc:
        web.web_wheel(pin("MarkupSafe", "3.0.4", sdist.name), sdist, options=options(), **kw)
    message = exc.value.args[0]
    assert message == ("MarkupSafe 3.0.4: markupsafe-3.0.4.tar.gz has a C extension (1 C/C++/Cython source, e.g. "
                       "src/markupsafe/_speedups.c): the web artifact loads pure-Python wheels only")
    assert "node Emscripten artifact" in (exc.value.hint or "") and "--allow-pure-fallback" in (exc.value.hint or "")


def test_the_manifest_and_the_licence(tmp_path):
    attrs = make_wheel(tmp_path, "attrs", "26.1.0", {"attrs/__init__.py": "x = 1\n"})
    built = make_wheel(tmp_path, "pure", "1.0", {"pure.py": "y = 2\n"})
    wheels = [Wheel(attrs, pin("attrs", "26.1.0", attrs.name), None),
              Wheel(built, pin("pure", "1.0", "pure-1.0.tar.gz"), {"sdist": "pure-1.0.tar.gz"})]
    manifest = web.wheels_manifest(wheels)
    assert manifest == {"format": 1, "wheels": [
        {"name": "attrs", "version": "26.1.0", "file": attrs.name,
         "sha256": hashlib.sha256(attrs.read_bytes()).hexdigest(), "url": f"https://index.example/{attrs.name}"},
        {"name": "pure", "version": "1.0", "file": built.name, "sha256": hashlib.sha256(built.read_bytes()).hexdigest(),
         "url": "https://index.example/pure-1.0.tar.gz", "built_from": "pure-1.0.tar.gz"}]}
    assert web.MANIFEST_PATH == "wheels/wheels.json"
    assert wheel_metadata(attrs)["name"] == ["attrs"] and metadata_license(wheel_metadata(attrs)) == {}
    assert metadata_license({"license-expression": ["MIT"], "license": ["x"]}) == {"license": "MIT"}
    assert metadata_license({"classifier": ["License :: OSI Approved :: BSD License"]}) == {"license": "BSD License"}
    assert metadata_license({"license": ["a very long licence text " * 5]}) == {}


@pytest.fixture
def artifact_with_wheels(tmp_path) -> Path:
    """A stand-in web artifact as `wasmbuild install` leaves it: the runtime files, wheels/ with a wheel and its
    manifest."""
    root = tmp_path / "cpython-3.13.15-wasm32-emscripten-web"
    root.mkdir()
    (root / "python.mjs").write_text("export default function createPython() {}\n")
    (root / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "python.data").write_bytes(b"stdlib")
    (root / "LICENSE").write_text("PSF\n")
    (root / "BUILD.json").write_text("{}\n")
    (root / "wheels").mkdir()
    wheel = make_wheel(root / "wheels", "attrs", "26.1.0", {"attrs/__init__.py": "x = 1\n"})
    (root / "wheels" / "wheels.json").write_text(json.dumps(web.wheels_manifest(
        [Wheel(wheel, pin("attrs", "26.1.0", wheel.name), None)])))
    return root


def test_the_npm_package_carries_wheels(artifact_with_wheels, tmp_path):
    data = npm.package_json("3.13.15", wheels=True)
    assert "wheels/" in data["files"] and data["exports"]["./wheels/*"] == "./wheels/*"
    assert "wheels/" not in npm.package_json("3.13.15")["files"]
    out = npm.write_npm_package(artifact_with_wheels, tmp_path / "dist", python_version="3.13.15", root=ROOT,
                                mtime=1_700_000_000)
    with tarfile.open(out) as tar:
        names = tar.getnames()
        package = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
    assert "package/wheels/wheels.json" in names and "package/wheels/attrs-26.1.0-py3-none-any.whl" in names
    assert "wheels/" in package["files"]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_serve_carries_wheels_and_follows_no_other_directory(artifact_with_wheels, tmp_path):
    site = serve.assemble(artifact_with_wheels, ROOT / "web", tmp_path / "site")
    assert sorted(p.name for p in (site / "wheels").iterdir()) == ["attrs-26.1.0-py3-none-any.whl", "wheels.json"]
    private = tmp_path / "private"
    private.mkdir()
    (private / "secret").write_text("key\n")
    (site / "other").symlink_to(private)
    with serve.serving(site, port=0, quiet=True) as server:
        status, body = get(server.url + "wheels/wheels.json")
        assert status == 200 and json.loads(body)["format"] == 1
        status, body = get(server.url + "wheels/attrs-26.1.0-py3-none-any.whl")
        wheel = artifact_with_wheels / "wheels" / "attrs-26.1.0-py3-none-any.whl"
        assert status == 200 and body == wheel.read_bytes()
        assert get(server.url + "other/secret")[0] == 404
        assert get(server.url + "wheels/../LICENSE")[0] == 404
        assert get(server.url + "wheels/")[0] == 404
    # wheels/ as a link to a directory is not followed; an artifact without wheels/ gives none
    shutil.rmtree(site / "wheels")
    (site / "wheels").symlink_to(private)
    assert not [n for n in serve.served_files(site) if n.startswith("wheels/")]
    shutil.rmtree(artifact_with_wheels / "wheels")
    again = serve.assemble(artifact_with_wheels, ROOT / "web", tmp_path / "site2")
    assert not (again / "wheels").exists()


# --- the loader under node, with a stand-in for python.mjs --------------------------------------------------------

# A module whose Python "runs" nothing: PyRun_SimpleString succeeds, the answer file holds the version, and the
# wheel-name check answers as `answer` says (the wheel is then fetched and its sha256 checked by the loader).
FACTORY = """export default async function () {
  const files = new Map();
  const answer = %s;
  return {
    FS: { init: { initialized: true }, writeFile(p, d) { files.set(p, d); }, unlink(p) { files.delete(p); },
          readFile(p) { return files.get(p) ?? '3.13.15'; } },
    ccall(name, ret, types, args) {
      if (String(args?.[0]).includes('wheel_name_file')) files.set('/tmp/_wb_out.json', JSON.stringify(answer));
      return 0;
    },
  };
}
"""
LOAD = """import { loadPython } from %s;
try {
  const py = await loadPython({ indexURL: process.argv[1], stdout() {}, stderr() {}, ...JSON.parse(process.argv[2]) });
  console.log('LOADED ' + JSON.stringify(py.packages));
} catch (error) { console.log('REJECTED ' + error.message); }
"""


def load(index_url: str, opts: dict | None = None) -> str:
    assert NODE
    script = LOAD % json.dumps(LOADER.as_uri())
    proc = subprocess.run([NODE, "--input-type=module", "-e", script, index_url, json.dumps(opts or {})],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1]


def stand_in(root: Path, answer: dict) -> Path:
    (root / "python.mjs").write_text(FACTORY % json.dumps(answer))
    return root


@contextlib.contextmanager
def http_directory(directory: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None  # type: ignore[assignment,method-assign]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_loader_installs_the_manifests_wheels_with_their_sha256(artifact_with_wheels):
    root = artifact_with_wheels
    index = root.as_uri() + "/"
    refused = {"ok": False, "refused": True, "type": "WheelError", "message": "stand-in refuses"}
    stand_in(root, refused)
    # every listed wheel goes through installWheel: a refusal rejects loadPython, naming the wheel and the manifest
    result = load(index)
    assert result == (f"REJECTED cannot install attrs-26.1.0-py3-none-any.whl, listed in {index}wheels/wheels.json: "
                      "stand-in refuses"), result
    # its bytes are checked against the manifest's sha256 before Python sees them
    stand_in(root, {"ok": True})
    manifest = json.loads((root / "wheels" / "wheels.json").read_text())
    manifest["wheels"][0]["sha256"] = "0" * 64
    (root / "wheels" / "wheels.json").write_text(json.dumps(manifest))
    result = load(index)
    assert result.startswith("REJECTED cannot install attrs-26.1.0-py3-none-any.whl"), result
    assert "not the expected 0000" in result
    assert load(index, {"wheels": False}) == "LOADED []"  # not looked for
    # a manifest that is not one is an error, not "no wheels"
    outside = json.dumps({"format": 1, "wheels": [{"file": "../x.whl", "sha256": SHA}]})
    for bad, words in (("{", "not JSON"), ('{"format": 2, "wheels": []}', "format 2"), (outside, "not a wheel's file"),
                       ('{"format": 1, "wheels": [{"file": "x-1-py3-none-any.whl"}]}', "has no sha256")):
        (root / "wheels" / "wheels.json").write_text(bad)
        result = load(index)
        assert result.startswith(f"REJECTED {index}wheels/wheels.json is not a manifest of wasmbuild install's "
                                 "wheels") and words in result, result


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_an_artifact_without_wheels_loads_without_an_error(artifact_with_wheels):
    root = stand_in(artifact_with_wheels, {"ok": True})
    shutil.rmtree(root / "wheels")
    assert load(root.as_uri() + "/") == "LOADED []"  # no such file under node: none
    (root / "wheels").mkdir()  # a directory without a manifest: the same
    assert load(root.as_uri() + "/") == "LOADED []"
    with http_directory(root) as url:  # HTTP 404: none
        proc = subprocess.run([NODE, "--experimental-network-imports", "--input-type=module", "-e",
                               "console.log('ok')"], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip("this node cannot import modules over http (--experimental-network-imports)")
        assert NODE
        script = LOAD % json.dumps(LOADER.as_uri())
        proc = subprocess.run([NODE, "--experimental-network-imports", "--input-type=module", "-e", script, url, "{}"],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.stdout.strip() == "LOADED []", proc.stdout + proc.stderr
