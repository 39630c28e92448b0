"""web/_wasmbuild_web.py's wheel installer (installWheel's Python half), run by the host Python on wheels made in the
test: the file name and its tags (PEP 427; only pure-Python wheels), the zip and its members' paths, RECORD's hashes,
.data's parts, INSTALLER and RECORD written, a replaced version, .pth files, the import system seeing it at once,
and the JSON protocol the JavaScript side uses."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest
from tests.wheels import make_wheel, record_hash

ROOT = Path(__file__).resolve().parents[2]
PY = f"{sys.version_info[0]}{sys.version_info[1]}"


@pytest.fixture
def web(monkeypatch):
    """A fresh copy of the module; sys.path and the imported modules restored afterwards."""
    spec = importlib.util.spec_from_file_location("_wasmbuild_web", ROOT / "web" / "_wasmbuild_web.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    return module


@pytest.fixture
def site(tmp_path) -> Path:
    path = tmp_path / "site-packages"
    path.mkdir()
    return path


def tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize(("filename", "parts"), [
    ("attrs-25.4.0-py3-none-any.whl", ("attrs", "25.4.0", None, "py3-none-any")),
    ("six-1.17.0-py2.py3-none-any.whl", ("six", "1.17.0", None, "py2.py3-none-any")),
    ("tiny_pkg-1.0.post1-7b-py3-none-any.whl", ("tiny_pkg", "1.0.post1", "7b", "py3-none-any")),
    ("zope.interface-7.0+local.1-py3-none-any.whl", ("zope.interface", "7.0+local.1", None, "py3-none-any")),
    (f"x-1-py3{sys.version_info[1]}-none-any.whl", ("x", "1", None, f"py3{sys.version_info[1]}-none-any")),
    (f"x-1-cp{PY}-none-any.whl", ("x", "1", None, f"cp{PY}-none-any")),
])
def test_a_pure_wheels_name_is_parsed(web, filename, parts):
    parsed = web.parse_wheel_name(filename)
    assert (parsed["name"], parsed["version"], parsed["build"], parsed["tag"]) == parts


@pytest.mark.parametrize("filename", ["attrs-25.4.0.whl", "attrs-25.4.0-py3-none-any.zip", "attrs.whl",
                                      "-1.0-py3-none-any.whl", "a/b-1.0-py3-none-any.whl", "",
                                      "attrs-25.4.0-x-y-py3-none-any.whl"])
def test_a_name_that_is_not_a_wheels_is_refused(web, filename):
    with pytest.raises(web.WheelError, match=r"is not a wheel's file name .*PEP 427.*the filename option"):
        web.parse_wheel_name(filename)


@pytest.mark.parametrize("filename", [
    f"numpy-2.3.0-cp{PY}-cp{PY}-manylinux_2_17_x86_64.whl",
    f"numpy-2.3.0-cp{PY}-cp{PY}-pyodide_2025_0_wasm32.whl",
    "cffi-1.0-py3-abi3-any.whl",
    "x-1.0-py3-none-emscripten_3_1_69_wasm32.whl",
])
def test_a_platform_wheel_is_refused_naming_its_tag(web, filename):
    tag = "-".join(filename.removesuffix(".whl").split("-")[2:])
    with pytest.raises(web.WheelError) as info:
        web.parse_wheel_name(filename)
    assert f"its tag {tag} is a platform wheel's" in str(info.value)
    assert "cannot load platform wheels" in str(info.value) and "py3-none-any" in str(info.value)


@pytest.mark.parametrize("filename", ["old-1.0-py2-none-any.whl", "new-1.0-py4-none-any.whl",
                                      f"x-1.0-py3{sys.version_info[1] + 1}-none-any.whl",
                                      "x-1.0-cp310-none-any.whl" if PY != "310" else "x-1.0-cp311-none-any.whl"])
def test_a_pure_wheel_for_another_python_is_refused(web, filename):
    with pytest.raises(web.WheelError, match=r"its tag \S+ is not for CPython 3\.\d+"):
        web.parse_wheel_name(filename)


def test_a_wheel_is_installed_and_imports_at_once(web, site, tmp_path):
    wheel = make_wheel(tmp_path, "tiny_pkg", "1.2", {
        "tiny_pkg/__init__.py": "from tiny_pkg.core import answer\n",
        "tiny_pkg/core.py": "def answer():\n    return 42\n",
        "tiny_pkg/data.txt": "hello",
    }, requires=("attrs>=22", "colorama; sys_platform == 'win32'"))
    importlib.import_module("json")  # the finders' caches are warm before the install
    result = web.install_wheel(str(wheel), site_packages=str(site))
    assert result["name"] == "tiny_pkg" and result["version"] == "1.2"
    assert result["location"] == str(site) and result["skipped"] == [] and result["replaced"] is None
    assert result["requires"] == ["attrs>=22", "colorama; sys_platform == 'win32'"]
    info = "tiny_pkg-1.2.dist-info"
    assert tree(site) == [f"{info}/INSTALLER", f"{info}/METADATA", f"{info}/RECORD", f"{info}/WHEEL",
                          "tiny_pkg/__init__.py", "tiny_pkg/core.py", "tiny_pkg/data.txt"]
    assert result["files"] == sorted(str(site / f) for f in tree(site))
    assert (site / info / "INSTALLER").read_text() == "wasmbuild\n"
    record = (site / info / "RECORD").read_text().splitlines()
    core, installer = b"def answer():\n    return 42\n", b"wasmbuild\n"
    assert f"tiny_pkg/core.py,{record_hash(core)},{len(core)}" in record
    assert f"{info}/INSTALLER,{record_hash(installer)},10" in record and record[-1] == f"{info}/RECORD,,"
    assert str(site) in sys.path
    assert importlib.import_module("tiny_pkg").answer() == 42
    from importlib.metadata import distribution

    dist = distribution("tiny_pkg")  # importlib.metadata finds it as pip's installs
    assert dist.version == "1.2" and dist.read_text("INSTALLER") == "wasmbuild\n"


def test_data_purelib_and_platlib_are_merged_the_rest_reported(web, site, tmp_path, monkeypatch, capsys):
    wheel = make_wheel(tmp_path, "mixed", "0.1", {
        "mixed/__init__.py": "",
        "mixed-0.1.data/purelib/mixed/pure.py": "P = 1\n",
        "mixed-0.1.data/platlib/mixed_plat.py": "Q = 2\n",
        "mixed-0.1.data/scripts/mixed-cli": "#!python\n",
        "mixed-0.1.data/headers/mixed.h": "",
        "mixed-0.1.data/data/share/mixed/a.txt": "",
        "mixed-0.1.data/data/share/mixed/b.txt": "",
    })
    monkeypatch.setattr(web, "_site_dir", lambda scheme: str(site))  # sysconfig's purelib and platlib
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps({"path": str(wheel), "filename": wheel.name}))
    web.install_wheel_file(str(source), str(out))  # the JavaScript side's call
    result = json.loads(out.read_text())
    assert result["ok"] is True and result["name"] == "mixed"
    assert {"mixed/__init__.py", "mixed/pure.py", "mixed_plat.py"} <= set(tree(site))
    assert not [f for f in tree(site) if ".data" in f or f.endswith((".h", ".txt", "mixed-cli"))]
    assert result["skipped"] == ["mixed-0.1.data/data/share/mixed/a.txt", "mixed-0.1.data/data/share/mixed/b.txt",
                                 "mixed-0.1.data/headers/mixed.h", "mixed-0.1.data/scripts/mixed-cli"]
    assert capsys.readouterr().err.splitlines() == [
        f"installWheel: {wheel.name}: left out mixed-0.1.data/data/ (2 files): only purelib and platlib are installed",
        f"installWheel: {wheel.name}: left out mixed-0.1.data/headers/ (1 file): only purelib and platlib are "
        "installed",
        f"installWheel: {wheel.name}: left out mixed-0.1.data/scripts/ (1 file): only purelib and platlib are "
        "installed"]
    assert importlib.import_module("mixed.pure").P == 1 and importlib.import_module("mixed_plat").Q == 2


def test_root_is_platlib_goes_to_platlib(web, tmp_path, monkeypatch):
    dirs = {"purelib": tmp_path / "pure", "platlib": tmp_path / "plat"}
    monkeypatch.setattr(web, "_site_dir", lambda scheme: str(dirs[scheme]))
    wheel = make_wheel(tmp_path, "rooted", "1", {"rooted.py": "", "rooted-1.data/purelib/other.py": ""},
                       root_is_purelib=False)
    result = web.install_wheel(str(wheel))
    assert result["location"] == str(dirs["platlib"])
    assert tree(dirs["platlib"]) == ["rooted-1.dist-info/INSTALLER", "rooted-1.dist-info/METADATA",
                                     "rooted-1.dist-info/RECORD", "rooted-1.dist-info/WHEEL", "rooted.py"]
    assert tree(dirs["purelib"]) == ["other.py"]
    assert "../pure/other.py" in (dirs["platlib"] / "rooted-1.dist-info" / "RECORD").read_text()


def test_a_new_version_replaces_the_installed_one(web, site, tmp_path):
    old = make_wheel(tmp_path, "Tiny.Pkg", "1.0", {"tiny_pkg/__init__.py": "V = 1\n", "tiny_pkg/gone.py": "",
                                                  "tiny_pkg/sub/__init__.py": "", "tiny_old.py": ""})
    web.install_wheel(str(old), site_packages=str(site))
    (site / "tiny_pkg" / "__pycache__").mkdir()
    (site / "tiny_pkg" / "__pycache__" / "gone.cpython-313.pyc").write_bytes(b"")
    (site / "unrelated.py").write_text("")
    new = make_wheel(tmp_path, "tiny_pkg", "2.0", {"tiny_pkg/__init__.py": "V = 2\n"})
    result = web.install_wheel(str(new), site_packages=str(site))
    assert result["replaced"] == "1.0" and result["version"] == "2.0"
    assert tree(site) == ["tiny_pkg-2.0.dist-info/INSTALLER", "tiny_pkg-2.0.dist-info/METADATA",
                          "tiny_pkg-2.0.dist-info/RECORD", "tiny_pkg-2.0.dist-info/WHEEL", "tiny_pkg/__init__.py",
                          "unrelated.py"]
    assert not (site / "tiny_pkg" / "sub").exists() and not (site / "tiny_pkg" / "__pycache__").exists()
    assert importlib.import_module("tiny_pkg").V == 2


def test_a_pth_file_is_processed_as_site_does(web, site, tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "from_pth.py").write_text("X = 'pth'\n")
    wheel = make_wheel(tmp_path, "pathy", "1", {"pathy.pth": f"{tmp_path / 'extra'}\n"})
    web.install_wheel(str(wheel), site_packages=str(site))
    assert str(tmp_path / "extra") in sys.path
    assert importlib.import_module("from_pth").X == "pth"


def refused(web, site: Path, wheel: Path, match: str, filename: str | None = None) -> None:
    with pytest.raises(web.WheelError, match=match):
        web.install_wheel(str(wheel), filename, site_packages=str(site))
    assert tree(site) == [], "a refused wheel wrote files"


@pytest.mark.parametrize("member", ["/etc/evil.py", "../evil.py", "pkg/../../evil.py", "pkg\\..\\evil.py",
                                    "C:/evil.py"])
def test_a_member_out_of_site_packages_is_refused(web, site, tmp_path, member):
    wheel = make_wheel(tmp_path, "evil", "1", {"evil.py": ""}, extra={member: "x"})
    refused(web, site, wheel, r"is an absolute path or leads out of its directory \(\.\.\): refused, nothing was "
            "installed")
    assert not (tmp_path / "evil.py").exists()


def test_a_member_changed_after_its_record_is_refused(web, site, tmp_path):
    wheel = make_wheel(tmp_path, "tampered", "1", {"tampered.py": "good = 1\n", "z.py": ""},
                       extra={"tampered.py": "evil = 1\n"})
    refused(web, site, wheel, r"its member tampered\.py does not have the hash its RECORD gives .*damaged or was "
            "changed")


@pytest.mark.parametrize(("content", "match"), [
    (b"<html>404 Not Found</html>", r"is not a zip archive, as a wheel is .*HTML page"),
    (b"", r"is not a zip archive"),
])
def test_not_a_zip_is_refused(web, site, tmp_path, content, match):
    wheel = tmp_path / "attrs-25.4.0-py3-none-any.whl"
    wheel.write_bytes(content)
    refused(web, site, wheel, match)


def test_a_misnamed_or_incomplete_wheel_is_refused(web, site, tmp_path):
    wheel = make_wheel(tmp_path, "real", "1", {"real.py": ""}, filename="other-1-py3-none-any.whl")
    refused(web, site, wheel, r"a wheel has one other-<version>\.dist-info directory, this one has "
            r"real-1\.dist-info")
    bare = tmp_path / "bare-1-py3-none-any.whl"
    with zipfile.ZipFile(bare, "w") as zf:
        zf.writestr("bare.py", "")
    refused(web, site, bare, r"this one has none")
    nowheel = tmp_path / "nowheel-1-py3-none-any.whl"
    with zipfile.ZipFile(nowheel, "w") as zf:
        zf.writestr("nowheel-1.dist-info/METADATA", "Name: nowheel\nVersion: 1\n")
    refused(web, site, nowheel, r"it has no nowheel-1\.dist-info/WHEEL: not a complete wheel")
    future = make_wheel(tmp_path, "future", "1", {"future.py": ""}, record=False,
                        extra={"future-1.dist-info/WHEEL": "Wheel-Version: 2.0\n"})
    refused(web, site, future, r"its Wheel-Version is 2\.0; this installer knows version 1")
    liar = make_wheel(tmp_path, "liar", "1", {"liar.py": ""}, record=False,
                      extra={"liar-1.dist-info/METADATA": "Name: somebody-else\nVersion: 1\n"})
    refused(web, site, liar, r"its METADATA names the project 'somebody-else', its file name 'liar'")


def test_a_platform_wheel_is_refused_before_it_is_opened(web, site, tmp_path):
    wheel = make_wheel(tmp_path, "fast", "1", {"fast.py": ""}, tag=f"cp{PY}-cp{PY}-manylinux_2_17_x86_64")
    refused(web, site, wheel, rf"its tag cp{PY}-cp{PY}-manylinux_2_17_x86_64 is a platform wheel's")
    pure = make_wheel(tmp_path, "pure", "1", {"pure.py": ""})
    refused(web, site, pure, r"cannot load platform wheels", filename=f"pure-1-cp{PY}-cp{PY}-win_amd64.whl")


def test_an_oversized_or_doubled_wheel_is_refused(web, site, tmp_path, monkeypatch):
    monkeypatch.setattr(web, "MAX_UNPACKED_BYTES", 100)
    wheel = make_wheel(tmp_path, "big", "1", {"big.py": "x" * 200})
    refused(web, site, wheel, r"it unpacks to \d+ bytes, more than this installer takes \(100\)")
    monkeypatch.undo()
    twice = make_wheel(tmp_path, "twice", "1", {"twice.py": "", "twice-1.data/purelib/twice.py": ""})
    refused(web, site, twice, r"its members twice\.py and twice-1\.data/purelib/twice\.py both install")


def test_the_name_protocol(web, tmp_path):
    source, out = tmp_path / "name.txt", tmp_path / "out.json"
    source.write_text("attrs-25.4.0-py3-none-any.whl")
    web.wheel_name_file(str(source), str(out))
    assert json.loads(out.read_text()) == {"ok": True, "name": "attrs", "version": "25.4.0", "build": None,
                                           "tag": "py3-none-any"}
    source.write_text(f"numpy-2.3.0-cp{PY}-cp{PY}-manylinux_2_17_x86_64.whl")
    web.wheel_name_file(str(source), str(out))
    result = json.loads(out.read_text())
    assert result["ok"] is False and result["refused"] is True and result["type"] == "WheelError"
    assert "cannot load platform wheels" in result["message"]


def test_the_install_protocol_gives_refusals_and_other_errors(web, tmp_path):
    source, out = tmp_path / "in.json", tmp_path / "out.json"
    source.write_text(json.dumps({"path": str(tmp_path / "missing.whl"), "filename": "x-1-py3-none-any.whl"}))
    web.install_wheel_file(str(source), str(out))
    result = json.loads(out.read_text())
    assert result["ok"] is False and result.get("refused") is None and result["type"] == "FileNotFoundError"
    assert result["traceback"].startswith("Traceback")
    source.write_text(json.dumps({"path": str(tmp_path / "missing.whl"), "filename": "x-1-cp313-cp313-any.whl"}))
    web.install_wheel_file(str(source), str(out))
    assert json.loads(out.read_text())["refused"] is True
