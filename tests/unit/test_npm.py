"""The npm package of the web artifact (wasmbuild.npm): npm's layout, package.json's exports, the same bytes from
the same inputs, listed in SHA256SUMS."""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import pytest

from wasmbuild import npm
from wasmbuild.errors import UsageError
from wasmbuild.release.sums import update_sha256sums

ROOT = Path(__file__).resolve().parents[2]
MTIME = 1_700_000_000


@pytest.fixture
def web_tree(tmp_path) -> Path:
    """A stand-in for a staged web artifact: the three runtime files and LICENSE."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "python.mjs").write_text("export default async function createPython(m) { return m; }\n")
    (tree / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tree / "python.data").write_bytes(b"stdlib" * 100)
    (tree / "LICENSE").write_text("PSF LICENSE AGREEMENT FOR PYTHON\n")
    (tree / "BUILD.json").write_text("{}\n")
    return tree


def test_version_and_name():
    assert npm.npm_version("3.13.15") == f"3.13.15-wasmbuild.{npm.NPM_REVISION}"
    assert npm.tarball_name("3.13.15") == f"wasmbuild-cpython-3.13.15-wasmbuild.{npm.NPM_REVISION}.tgz"
    assert npm.is_npm_tarball(npm.tarball_name("3.11.2"))
    assert not npm.is_npm_tarball("cpython-3.13.15-wasm32-emscripten-web.tar.gz")


def test_package_json_exports_the_api_and_the_runtime_files():
    data = npm.package_json("3.13.15")
    assert data["name"] == "@wasmbuild/cpython" and data["type"] == "module"
    assert data["exports"]["."] == {"types": "./wasmbuild-python.d.ts", "default": "./wasmbuild-python.mjs"}
    for name in ("python.mjs", "python.wasm", "python.data"):
        assert data["exports"][f"./{name}"] == f"./{name}"
        assert name in data["files"]
    assert "PSF-2.0" in data["license"]
    assert all((ROOT / "web" / name).is_file() for name in npm.API_FILES)


def test_the_tarball_has_npms_layout(web_tree, tmp_path):
    out = npm.write_npm_package(web_tree, tmp_path / "dist", python_version="3.13.15", root=ROOT, mtime=MTIME)
    assert out == tmp_path / "dist" / npm.tarball_name("3.13.15")
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        files = sorted(name for name, m in members.items() if m.isfile())
        assert files == sorted(f"package/{n}" for n in ("package.json", "README.md", "LICENSE", *npm.API_FILES,
                                                         *npm.RUNTIME_FILES))
        assert [m for m in tar.getmembers() if m.isfile()][0].name == "package/package.json"
        assert all(m.mtime == MTIME and m.uid == 0 and m.gid == 0 and not m.uname for m in members.values())
        assert all(m.mode == 0o644 for m in members.values() if m.isfile())
        package = json.loads(tar.extractfile("package/package.json").read())  # type: ignore[union-attr]
        readme = tar.extractfile("package/README.md").read().decode()  # type: ignore[union-attr]
        api = tar.extractfile("package/wasmbuild-python.mjs").read()  # type: ignore[union-attr]
    assert package["version"] == "3.13.15-wasmbuild.3"
    assert set(package["files"]) == {name.removeprefix("package/") for name in files} - {"package.json"}
    assert "CPython 3.13.15" in readme and "@PYTHON_VERSION@" not in readme and "@NPM_VERSION@" not in readme
    assert api == (ROOT / "web" / "wasmbuild-python.mjs").read_bytes()
    with gzip.open(out) as f:
        f.read()
    assert out.read_bytes()[4:8] == b"\0\0\0\0"  # no time in the gzip header


def test_the_same_inputs_give_the_same_bytes(web_tree, tmp_path):
    a = npm.write_npm_package(web_tree, tmp_path / "a", python_version="3.13.15", root=ROOT, mtime=MTIME)
    (web_tree / "python.data").touch()  # another mtime, another mode: the same bytes
    (web_tree / "python.wasm").chmod(0o600)
    b = npm.write_npm_package(web_tree, tmp_path / "b", python_version="3.13.15", root=ROOT, mtime=MTIME)
    assert a.read_bytes() == b.read_bytes()


def test_sha256sums_lists_the_tarball(web_tree, tmp_path):
    dist = tmp_path / "dist"
    out = npm.write_npm_package(web_tree, dist, python_version="3.13.15", root=ROOT, mtime=MTIME)
    (dist / "unrelated.tgz").write_bytes(b"x")
    assert f"  {out.name}\n" in update_sha256sums(dist).read_text()
    assert "unrelated" not in (dist / "SHA256SUMS").read_text()


def test_a_tree_that_is_not_a_web_artifact_is_refused(web_tree, tmp_path):
    (web_tree / "python.data").unlink()
    with pytest.raises(UsageError, match="not a web artifact: no python.data"):
        npm.write_npm_package(web_tree, tmp_path / "dist", python_version="3.13.15", root=ROOT, mtime=MTIME)
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def test_package_inputs_name_the_projects_files(tmp_path):
    inputs = npm.package_inputs(ROOT)
    assert inputs["revision"] == str(npm.NPM_REVISION)
    assert set(inputs) == {"revision", "web/wasmbuild-python.mjs", "web/wasmbuild-python.d.ts", "web/npm-README.md"}
    copy = tmp_path / "root"
    (copy / "web").mkdir(parents=True)
    for name in ("wasmbuild-python.mjs", "wasmbuild-python.d.ts", "npm-README.md"):
        (copy / "web" / name).write_bytes((ROOT / "web" / name).read_bytes())
    assert npm.package_inputs(copy) == inputs
    (copy / "web" / "wasmbuild-python.mjs").write_text("// edited\n")
    assert npm.package_inputs(copy)["web/wasmbuild-python.mjs"] != inputs["web/wasmbuild-python.mjs"]
