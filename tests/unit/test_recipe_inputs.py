"""Bad data files give one RecipeError naming the file (and line or YAML path): encodings, nesting, duplicate
keys, paths that would leave their directory, downloads without a size bound, versions, stray recipe files."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from tests.unit.test_recipe import VALID_RECIPE

from wasmbuild import libs
from wasmbuild.errors import RecipeError, UsageError
from wasmbuild.recipe import (
    Download,
    available_recipes,
    load_recipe,
    load_toolchain,
    project_root,
    select_recipe,
    toolchain_file,
)
from wasmbuild.schema import MAX_DEPTH, Field, load_yaml, validate

ROOT = Path(__file__).resolve().parents[2]

RECIPE = VALID_RECIPE  # the valid recipe of test_recipe.py, changed per test by recipe()

TOOLCHAIN = {
    "format": 1,
    "name": "wasi-sdk",
    "version": "25",
    "routes": {
        "release": [{"platform": "linux-x86_64", "url": "https://sdk.example/wasi-sdk-25.tar.gz", "sha256": "b" * 64,
                     "size": 100}],
        "debian": {
            "platform": "linux-x86_64",
            "arch": "amd64",
            "packages": [{"name": "clang-19", "version": "1", "suite": "bookworm",
                          "path": "pool/main/l/llvm/clang-19_1_amd64.deb", "sha256": "c" * 64, "size": 1}],
        },
    },
}

LIBRARIES = {
    "format": 1,
    "libraries": {
        "zlib": {"version": "1.3.1", "license": "Zlib",
                 "source": {"url": "https://zlib.example/zlib-1.3.1.tar.gz", "sha256": "d" * 64, "size": 5},
                 "script": "make", "provides": {"ZLIB_LIBS": "-lz"}},
    },
}


@pytest.fixture
def root(tmp_path):
    for d in ("recipes", "toolchains", "patches"):
        (tmp_path / d).mkdir()
    return tmp_path


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def recipe(**changes):
    """RECIPE with dotted-path changes (a__b=value); ... deletes the key."""
    return _changed(RECIPE, changes)


def toolchain(**changes):
    return _changed(TOOLCHAIN, changes)


def _changed(base, changes):
    data = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


# --- 1. encoding -------------------------------------------------------------------------------------------


def test_a_recipe_that_is_not_utf8_names_the_file(root):
    file = write(root / "recipes" / "cpython-3.13.yaml", "format: 1\nversion: '3.13.15'\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: not UTF-8 text (line 3")) as info:
        load_recipe(file)
    assert "save the file as UTF-8" in str(info.value)


def test_unreadable_file_is_a_recipe_error(root):
    directory = root / "recipes" / "cpython-3.13.yaml"
    directory.mkdir()
    with pytest.raises(RecipeError, match=re.escape(f"{directory}: cannot read")):
        load_recipe(directory)


# --- 2. nesting --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "a: " + "[" * 2000 + "]" * 2000 + "\n",
    "a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n",
    "".join(f"{'  ' * i}k{i}:\n" for i in range(2000)) + "  " * 2000 + "x\n",
], ids=["flow-lists", "flow-mappings", "block-mappings"])
def test_yaml_nested_2000_levels_deep_is_a_recipe_error(root, text):
    file = write(root / "recipes" / "cpython-3.13.yaml", text)
    expected = rf"^{re.escape(str(file))}: line \d+: nested more than {MAX_DEPTH} levels deep$"
    with pytest.raises(RecipeError, match=expected):
        load_recipe(file)


def test_validate_turns_a_recursion_error_into_a_recipe_error():
    schema: dict = {}
    schema["x"] = Field(schema, required=False)  # a recursive schema: validate follows the data down
    value: dict = {}
    node = value
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(RecipeError, match=r"^f\.yaml: nested too deeply$"):
        validate(value, schema, "f.yaml")


# --- 3. duplicate keys --------------------------------------------------------------------------------------


def test_duplicate_top_level_key_names_the_key_and_line(root):
    text = yaml.safe_dump(RECIPE, sort_keys=False) + "version: '3.13.1'\n"
    file = write(root / "recipes" / "cpython-3.13.yaml", text)
    line = text.splitlines().index("version: '3.13.1'") + 1
    with pytest.raises(RecipeError, match=re.escape(f"{file}: line {line}: duplicate key 'version' (first given on "
                                                    "line 2)")):
        load_recipe(file)


def test_duplicate_nested_key_in_a_toolchain_and_in_libraries(tmp_path):
    file = write(tmp_path / "tc.yaml", "format: 1\nname: x\nversion: '1'\nroutes:\n  release: []\n  release: []\n")
    expected = f"{file}: line 6: duplicate key 'release' (first given on line 5)"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_toolchain(file)
    text = yaml.safe_dump(LIBRARIES, sort_keys=False).replace("    license: Zlib\n",
                                                              "    license: Zlib\n    license: MIT\n")
    file = write(tmp_path / "libraries.yaml", text)
    with pytest.raises(RecipeError, match=re.escape("duplicate key 'license'")):
        libs.load_libraries(file)


def test_merge_keys_are_not_duplicates(tmp_path):
    file = write(tmp_path / "x.yaml", "base: &b {a: 1, b: 2}\nuse:\n  <<: *b\n  b: 3\n")
    assert load_yaml(file)["use"] == {"a": 1, "b": 3}


# --- 4. paths stay in their directory ------------------------------------------------------------------------


BAD_FILE_NAMES = ["a/b.tar.xz", "..", ".", "-rf.tar.xz", "", "../x.tar.xz"]


@pytest.mark.parametrize("bad", BAD_FILE_NAMES)
def test_source_filename_must_be_a_plain_file_name(root, bad):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(source__filename=bad))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: source.filename: ")):
        load_recipe(file)


@pytest.mark.parametrize("bad", BAD_FILE_NAMES)
def test_release_filename_must_be_a_plain_file_name(tmp_path, bad):
    file = write(tmp_path / "tc.yaml", toolchain(routes__release__0__filename=bad))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: routes.release[0].filename: ")):
        load_toolchain(file)


@pytest.mark.parametrize("url", ["https://sdk.example/dl/..", "https://sdk.example/dl/../", "https://sdk.example/.",
                                 "https://sdk.example/-x.tar.gz"])
def test_name_taken_from_the_url_must_be_a_plain_file_name(tmp_path, url):
    file = write(tmp_path / "tc.yaml", toolchain(routes__release__0__url=url))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: routes.release[0].url: the file name taken from the "
                                                    "url's last segment")) as info:
        load_toolchain(file)
    assert "give a plain 'filename'" in str(info.value)
    # A filename makes the same url usable.
    data = toolchain(routes__release__0__url=url, routes__release__0__filename="sdk.tar.gz")
    manifest = load_toolchain(write(tmp_path / "tc2.yaml", data))
    assert manifest.release[0].download.name == "sdk.tar.gz"


def test_library_source_url_name_is_checked_too(tmp_path):
    data = _changed(LIBRARIES, {"libraries__zlib__source__url": "https://zlib.example/x/.."})
    file = write(tmp_path / "libraries.yaml", data)
    with pytest.raises(RecipeError, match=re.escape(f"{file}: libraries.zlib.source.url: the file name taken")):
        libs.load_libraries(file)


@pytest.mark.parametrize("bad", ["../pool/x.tar.xz", "/pool/x.tar.xz", "pool/../../x.tar.xz", "pool//x", "pool/x/",
                                 ""])
def test_debian_paths_must_be_relative_without_dotdot(root, tmp_path, bad):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(source__debian=bad))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: source.debian: ")):
        load_recipe(file)
    data = toolchain()
    data["routes"]["debian"]["packages"][0]["path"] = bad
    file = write(tmp_path / "tc.yaml", data)
    with pytest.raises(RecipeError, match=re.escape(f"{file}: routes.debian.packages[0].path: ")):
        load_toolchain(file)


@pytest.mark.parametrize("bad", ["../outside.patch", "/etc/passwd", "a/../../outside.patch"])
def test_patch_file_must_stay_in_patches(root, bad):
    (root / "outside.patch").write_text("--- a\n+++ b\n")
    file = write(root / "recipes" / "cpython-3.13.yaml",
                 recipe(patches=[{"file": bad, "reason": "r", "upstream": "u"}]))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: patches[0].file: ")):
        load_recipe(file)


def test_patch_file_symlinked_out_of_patches_is_refused(root):
    (root / "outside.patch").write_text("--- a\n+++ b\n")
    (root / "patches" / "link.patch").symlink_to(root / "outside.patch")
    file = write(root / "recipes" / "cpython-3.13.yaml",
                 recipe(patches=[{"file": "link.patch", "reason": "r", "upstream": "u"}]))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: patches[0].file: link.patch resolves outside")):
        load_recipe(file)


def test_patch_in_a_subdirectory_of_patches_loads(root):
    (root / "patches" / "cpython-3.13").mkdir()
    (root / "patches" / "cpython-3.13" / "fix.patch").write_text("--- a\n+++ b\n")
    file = write(root / "recipes" / "cpython-3.13.yaml",
                 recipe(patches=[{"file": "cpython-3.13/fix.patch", "reason": "r", "upstream": "u"}]))
    assert load_recipe(file).patches[0].rel == "cpython-3.13/fix.patch"


def test_config_site_and_top_dir_cannot_leave_their_directory(root):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(targets__wasi__config_site="../../etc/x"))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: targets.wasi.config_site: must not contain '..'")):
        load_recipe(file)
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(source__top_dir="../Python"))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: source.top_dir: ")):
        load_recipe(file)


# --- 5. size or max_size -------------------------------------------------------------------------------------


def test_release_download_without_size_or_max_size_is_refused(tmp_path):
    file = write(tmp_path / "tc.yaml", toolchain(routes__release__0__size=...))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: routes.release[0]: missing 'size'")) as info:
        load_toolchain(file)
    assert "'max_size' (an upper bound in bytes)" in str(info.value)


def test_max_size_is_loaded_into_the_download(tmp_path):
    file = write(tmp_path / "tc.yaml", toolchain(routes__release__0__size=..., routes__release__0__max_size=4096))
    download = load_toolchain(file).release[0].download
    assert (download.size, download.max_size) == (None, 4096)
    assert Download(url="https://x/y", sha256="a" * 64).max_size is None


@pytest.mark.parametrize(("changes", "expected"), [
    ({"routes__release__0__size": ..., "routes__release__0__max_size": 0},
     "routes.release[0].max_size: expected a positive integer, got 0"),
    ({"routes__release__0__max_size": 10}, "routes.release[0].max_size: 10 is smaller than size 100"),
])
def test_bad_max_size(tmp_path, changes, expected):
    file = write(tmp_path / "tc.yaml", toolchain(**changes))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: {expected}")):
        load_toolchain(file)


def test_recipe_source_and_library_source_need_a_size_too(root, tmp_path):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(source__size=...))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: source: missing 'size'")):
        load_recipe(file)
    file = write(tmp_path / "libraries.yaml", _changed(LIBRARIES, {"libraries__zlib__source__size": ...}))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: libraries.zlib.source: missing 'size'")):
        libs.load_libraries(file)


def _downloads(data, path=""):
    """Every mapping pinned by a sha256 in raw YAML data, with its YAML path."""
    if isinstance(data, dict):
        if "sha256" in data:
            yield path, data
        for key, value in data.items():
            yield from _downloads(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _downloads(value, f"{path}[{i}]")


DATA_FILES = sorted([*(ROOT / "recipes").glob("*.yaml"), *(ROOT / "toolchains").glob("*.yaml")])


@pytest.mark.parametrize("file", DATA_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_real_download_has_a_size_or_max_size(file):
    """Raw YAML, so every data file counts, whatever loads it."""
    found = list(_downloads(yaml.safe_load(file.read_text())))
    assert found, f"{file.name} pins nothing"
    for path, entry in found:
        assert "size" in entry or "max_size" in entry, f"{file.name}: {path} has neither size nor max_size"
        bound = entry.get("size", entry.get("max_size"))
        assert isinstance(bound, int) and bound > 0, f"{file.name}: {path}"


def test_every_real_download_loads_with_a_size_bound():
    """Through the loaders: recipes, their toolchain manifests, the libraries."""
    downloads = []
    for file in available_recipes(ROOT).values():
        r = load_recipe(file)
        downloads.append((file.name, r.source))
        for target in r.targets.values():
            manifest = load_toolchain(toolchain_file(ROOT, target.toolchain))
            downloads += [(manifest.file.name, asset.download) for asset in manifest.release]
            downloads += [(manifest.file.name, Download(url=p.path, sha256=p.sha256, size=p.size))
                          for p in manifest.debian_packages]
    for lib in libs.load_libraries(ROOT / "recipes" / "libraries.yaml").values():
        downloads += [("libraries.yaml", d) for d in (lib.source, lib.repack) if d]
    names = {name for name, _ in downloads}
    assert {"libraries.yaml", "wasi-sdk.yaml", "emscripten.yaml"} <= names
    missing = [(name, d.name) for name, d in downloads if d.size is None and d.max_size is None]
    assert not missing


def test_real_release_assets_without_a_published_size_have_a_max_size():
    for name in ("wasi-sdk", "emscripten"):
        for asset in load_toolchain(toolchain_file(ROOT, name)).release:
            assert asset.download.size is not None or asset.download.max_size, asset.download.name


# --- 6. version and targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "version"), [("cpython-3.13.yaml", "3.12.1"), ("cpython-3.13.yaml", "3.1.3"),
                                               ("cpython-3.1.yaml", "3.13.0")])
def test_version_must_match_the_file_name(root, name, version):
    file = write(root / "recipes" / name, recipe(version=version))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: version: {version} does not match the file name")):
        load_recipe(file)


@pytest.mark.parametrize("version", ["3.13", "3.13.x", "v3.13.1", "3.13.01"])
def test_version_must_be_a_release_number(root, version):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(version=version))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: version: expected a CPython release")):
        load_recipe(file)


def test_prerelease_versions_load(root):
    file = write(root / "recipes" / "cpython-3.14.yaml", recipe(version="3.14.0rc1"))
    assert load_recipe(file).short_version == "3.14"


def test_recipe_without_targets_is_refused(root):
    file = write(root / "recipes" / "cpython-3.13.yaml", recipe(targets={}))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: targets: the recipe defines no targets")):
        load_recipe(file)


# --- 7. stray files in recipes/ ------------------------------------------------------------------------------


def test_stray_recipe_files_are_skipped_with_one_warning_each(root, capsys):
    write(root / "recipes" / "cpython-3.13.yaml", RECIPE)
    write(root / "recipes" / "cpython-3.9.yaml", recipe(version="3.9.20"))
    for stray in ("cpython-banana.yaml", "cpython-3.13.0.yaml", "cpython-3.yaml", "cpython-03.13.yaml"):
        write(root / "recipes" / stray, RECIPE)
    write(root / "recipes" / "libraries.yaml", LIBRARIES)
    assert list(available_recipes(root)) == ["3.9", "3.13"]
    assert list(available_recipes(root)) == ["3.9", "3.13"]  # a second call does not warn again
    lines = capsys.readouterr().err.splitlines()
    assert sorted(lines) == sorted([
        "warning: ignoring recipes/cpython-banana.yaml: not named cpython-X.Y.yaml",
        "warning: ignoring recipes/cpython-3.13.0.yaml: not named cpython-X.Y.yaml",
        "warning: ignoring recipes/cpython-3.yaml: not named cpython-X.Y.yaml",
        "warning: ignoring recipes/cpython-03.13.yaml: not named cpython-X.Y.yaml",
    ])
    assert select_recipe(root, "3.13").version == "3.13.15"
    assert select_recipe(root, None).version == "3.13.15"


def test_a_directory_named_like_a_recipe_is_skipped(root, capsys):
    write(root / "recipes" / "cpython-3.13.yaml", RECIPE)
    (root / "recipes" / "cpython-3.14.yaml").mkdir()
    assert list(available_recipes(root)) == ["3.13"]
    assert "warning: ignoring recipes/cpython-3.14.yaml: not a file" in capsys.readouterr().err


# --- 8. WASMBUILD_ROOT -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["missing", "empty", "only-recipes"])
def test_wrong_wasmbuild_root_is_a_usage_error_naming_the_variable(tmp_path, monkeypatch, layout):
    value = tmp_path / "data"
    if layout != "missing":
        value.mkdir()
    if layout == "only-recipes":
        (value / "recipes").mkdir()
    monkeypatch.setenv("WASMBUILD_ROOT", str(value))
    with pytest.raises(UsageError, match=re.escape(f"WASMBUILD_ROOT={value}: ")) as info:
        project_root()
    assert "unset it" in str(info.value)


def test_wasmbuild_root_is_used_when_valid_and_ignored_when_empty(root, monkeypatch):
    monkeypatch.setenv("WASMBUILD_ROOT", str(root))
    assert project_root() == root.resolve()
    monkeypatch.setenv("WASMBUILD_ROOT", "")
    assert project_root() == ROOT
