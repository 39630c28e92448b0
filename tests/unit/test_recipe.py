"""Recipes and toolchain manifests: the real ones load, malformed ones give precise errors."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from wasmbuild.errors import RecipeError, UsageError
from wasmbuild.recipe import (
    FORMAT,
    available_recipes,
    load_recipe,
    load_toolchain,
    project_root,
    select_recipe,
    toolchain_file,
)

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("cpython-*.yaml"))


def _is_toolchain_manifest(path: Path) -> bool:
    """toolchains/host-tools.yaml lists `tools` in a format of its own; the other files there are manifests."""
    return "tools" not in (yaml.safe_load(path.read_text()) or {})


TOOLCHAINS = sorted(p for p in (ROOT / "toolchains").glob("*.yaml") if _is_toolchain_manifest(p))
SHA256 = re.compile(r"^[0-9a-f]{64}$")

VALID_RECIPE = {
    "format": 1,
    "version": "3.13.15",
    "source": {
        "url": "https://python.example/ftp/Python-3.13.15.tar.xz",
        "filename": "Python-3.13.15.tar.xz",
        "sha256": "a" * 64,
        "size": 10,
        "top_dir": "Python-3.13.15",
    },
    "source_date_epoch": 1_700_000_000,
    "targets": {"wasi": {"triple": "wasm32-wasip1", "toolchain": "wasi-sdk"}},
}

VALID_TOOLCHAIN = {
    "format": 1,
    "name": "wasi-sdk",
    "version": "25",
    "routes": {
        "release": [
            {"platform": "linux-x86_64", "url": "https://sdk.example/wasi-sdk-25.tar.gz", "sha256": "b" * 64,
             "max_size": 1000}
        ],
        "debian": {
            "platform": "linux-x86_64",
            "arch": "amd64",
            "packages": [
                {"name": "clang-19", "version": "1:19.1.7-3", "suite": "bookworm",
                 "path": "pool/main/l/llvm-toolchain-19/clang-19_19.1.7-3_amd64.deb", "sha256": "c" * 64,
                 "size": 116188},
            ],
        },
    },
}


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return path


@pytest.fixture
def recipe_root(tmp_path):
    (tmp_path / "patches").mkdir()
    (tmp_path / "toolchains").mkdir()
    return tmp_path


def make_recipe(root: Path, data=None, name: str = "cpython-3.13.yaml") -> Path:
    return write_yaml(root / "recipes" / name, copy.deepcopy(VALID_RECIPE) if data is None else data)


def mutated(**changes):
    """A copy of VALID_RECIPE with dotted-path changes; a value of ... deletes the key."""
    data = copy.deepcopy(VALID_RECIPE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


# --- the real data ---------------------------------------------------------------------------------------


def test_the_repository_has_recipes_and_toolchains():
    assert RECIPES, "no recipes/*.yaml"
    assert TOOLCHAINS, "no toolchains/*.yaml"
    assert project_root() == ROOT


@pytest.mark.parametrize("file", RECIPES, ids=lambda p: p.name)
def test_real_recipe_loads_and_pins_its_source(file):
    recipe = load_recipe(file)
    assert file.name == f"cpython-{recipe.short_version}.yaml"
    assert recipe.source.url.startswith("https://")
    assert SHA256.match(recipe.source.sha256)
    assert recipe.source.size and recipe.source.size > 0
    assert recipe.source.name == recipe.source.url.rsplit("/", 1)[-1]
    assert recipe.top_dir == f"Python-{recipe.version}"
    assert recipe.source_date_epoch > 1_600_000_000
    for patch in recipe.patches:
        assert patch.file.is_file()
    assert recipe.targets, "a recipe without targets builds nothing"
    for target in recipe.targets.values():
        # Every target's toolchain has a manifest, and that manifest is valid.
        load_toolchain(toolchain_file(ROOT, target.toolchain))


@pytest.mark.parametrize("file", TOOLCHAINS, ids=lambda p: p.name)
def test_real_toolchain_manifest_pins_every_download(file):
    manifest = load_toolchain(file)
    raw = yaml.safe_load(file.read_text())
    assert manifest.release or manifest.debian_packages
    for asset in manifest.release:
        assert asset.download.url.startswith("https://")
        assert SHA256.match(asset.download.sha256)
    for entry in raw["routes"].get("release", []):
        assert {"url", "sha256"} <= entry.keys()
    for pkg in manifest.debian_packages:
        assert SHA256.match(pkg.sha256), pkg.name
        assert isinstance(pkg.size, int) and pkg.size > 0, pkg.name
        assert pkg.path.startswith("pool/") and pkg.path.endswith(".deb"), pkg.path
        assert pkg.filename == pkg.path.rsplit("/", 1)[-1]
    for entry in raw["routes"].get("debian", {}).get("packages", []):
        assert {"path", "sha256", "size"} <= entry.keys()
    if manifest.debian_packages:
        assert manifest.debian_arch in {"amd64", "arm64"}
        assert len({p.sha256 for p in manifest.debian_packages}) == len(manifest.debian_packages)


# --- a valid fixture recipe ---------------------------------------------------------------------------------


def test_fixture_recipe_loads_with_defaults(recipe_root):
    recipe = load_recipe(make_recipe(recipe_root))
    assert recipe.version == "3.13.15"
    assert recipe.short_version == "3.13"
    assert recipe.source.name == "Python-3.13.15.tar.xz"
    assert recipe.source.size == 10
    assert recipe.patches == ()
    assert recipe.stdlib_exclude == ()
    wasi = recipe.target("wasi")
    assert (wasi.triple, wasi.toolchain, wasi.config_site) == ("wasm32-wasip1", "wasi-sdk", None)
    assert wasi.configure_args == () and wasi.config_cache == {} and wasi.smoke_imports == ()


def test_patches_are_resolved_in_the_patches_directory(recipe_root):
    (recipe_root / "patches" / "fix.patch").write_text("--- a\n+++ b\n")
    data = mutated(patches=[{"file": "fix.patch", "reason": "why", "upstream": "gh-1"}])
    recipe = load_recipe(make_recipe(recipe_root, data))
    assert [(p.file, p.rel, p.reason, p.upstream) for p in recipe.patches] == [
        (recipe_root / "patches" / "fix.patch", "fix.patch", "why", "gh-1")
    ]


# --- malformed recipes -----------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(recipe_root):
    data = copy.deepcopy(VALID_RECIPE)
    data["sourc"] = data.pop("source")
    file = make_recipe(recipe_root, data)
    with pytest.raises(RecipeError, match=re.escape(f"{file}: unknown key 'sourc' (did you mean 'source'?)")):
        load_recipe(file)


def test_unknown_nested_key_names_the_yaml_path_and_suggests(recipe_root):
    data = copy.deepcopy(VALID_RECIPE)
    data["source"]["sha265"] = data["source"].pop("sha256")
    file = make_recipe(recipe_root, data)
    with pytest.raises(RecipeError) as info:
        load_recipe(file)
    message = str(info.value)
    assert message.startswith(f"{file}: source: unknown key 'sha265' (did you mean 'sha256'?)")
    assert "known keys: debian, filename, max_size, sha256, size, top_dir, url" in message


def test_unknown_target_name_is_rejected_with_a_suggestion(recipe_root):
    data = copy.deepcopy(VALID_RECIPE)
    data["targets"] = {"wasm": data["targets"]["wasi"]}
    file = make_recipe(recipe_root, data)
    with pytest.raises(RecipeError, match=re.escape("targets: unknown key 'wasm' (did you mean 'wasi'?)")):
        load_recipe(file)


def test_url_without_sha256_fails_naming_source(recipe_root):
    file = make_recipe(recipe_root, mutated(source__sha256=...))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: source: missing required key 'sha256'")):
        load_recipe(file)


@pytest.mark.parametrize(
    "bad",
    ["abc", "A" * 64, "a" * 63, "a" * 65, "g" * 64, 1234],
    ids=["short", "uppercase", "63-digits", "65-digits", "not-hex", "integer"],
)
def test_bad_sha256_fails(recipe_root, bad):
    file = make_recipe(recipe_root, mutated(source__sha256=bad))
    expected = f"{file}: source.sha256: expected a sha256 (64 lowercase hex digits), got {bad!r}"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_recipe(file)


def test_missing_patch_file_fails_naming_the_yaml_path(recipe_root):
    data = mutated(patches=[{"file": "missing.patch", "reason": "r", "upstream": "u"}])
    file = make_recipe(recipe_root, data)
    expected = f"{file}: patches[0].file: patch file not found: "
    with pytest.raises(RecipeError, match=re.escape(expected)) as info:
        load_recipe(file)
    assert str(recipe_root / "patches" / "missing.patch") in str(info.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": 3.13}, "version: expected a non-empty string, got float 3.13"),
        ({"version": ""}, "version: expected a non-empty string, got string ''"),
        ({"source_date_epoch": "soon"}, "source_date_epoch: expected a non-negative integer, got 'soon'"),
        ({"source_date_epoch": -1}, "source_date_epoch: expected a non-negative integer, got -1"),
        ({"format": True}, "format: expected a non-negative integer, got True"),
        ({"source__size": "10"}, "source.size: expected a non-negative integer, got '10'"),
        ({"source__url": "ftp://python.example/x.tar.xz"}, "source.url: expected an http(s) url"),
        ({"source": "https://python.example/x.tar.xz"}, "source: expected a mapping, got string"),
        ({"patches": {"file": "x"}}, "patches: expected a list, got mapping"),
        ({"targets__wasi__configure_args": "--with-x"},
         "targets.wasi.configure_args: expected a list, got string"),
        ({"targets__wasi__cflags": ["-O2", 3]},
         "targets.wasi.cflags[1]: expected a non-empty string, got integer 3"),
        ({"targets__wasi__config_cache": {"ac_cv_func_dup3": 1}},
         "targets.wasi.config_cache.ac_cv_func_dup3: expected a non-empty string, got integer 1"),
        ({"targets__wasi__smoke": {"imports": ["json"]}}, "targets.wasi.smoke: missing required key 'tests'"),
        ({"targets__wasi": None}, "targets.wasi: expected a mapping, got NoneType"),
        ({"targets": ...}, "missing required key 'targets'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_wrong_types_name_the_yaml_path(recipe_root, changes, expected):
    file = make_recipe(recipe_root, mutated(**changes))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: {expected}")):
        load_recipe(file)


def test_whole_document_must_be_a_mapping(recipe_root):
    file = make_recipe(recipe_root, "- just\n- a list\n")
    with pytest.raises(RecipeError, match=re.escape(f"{file}: expected a mapping, got list")):
        load_recipe(file)


def test_unknown_format_number(recipe_root):
    file = make_recipe(recipe_root, mutated(format=2))
    expected = f"{file}: format: unsupported format 2 (this wasmbuild reads {FORMAT})"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_recipe(file)


def test_invalid_yaml_and_missing_file(recipe_root):
    file = make_recipe(recipe_root, "format: 1\nsource: [unclosed\n")
    with pytest.raises(RecipeError, match=re.escape(f"{file}: not valid YAML")):
        load_recipe(file)
    missing = recipe_root / "recipes" / "cpython-9.9.yaml"
    with pytest.raises(RecipeError, match=re.escape(f"{missing}: file not found")):
        load_recipe(missing)


# --- toolchain manifests -------------------------------------------------------------------------------


def test_fixture_toolchain_loads(tmp_path):
    manifest = load_toolchain(write_yaml(tmp_path / "tc.yaml", VALID_TOOLCHAIN))
    assert [a.platform for a in manifest.release] == ["linux-x86_64"]
    assert manifest.release[0].strip_components == 1  # the default
    assert manifest.release[0].download.name == "wasi-sdk-25.tar.gz"
    assert manifest.debian_packages[0].filename == "clang-19_19.1.7-3_amd64.deb"
    assert manifest.components == {}


def test_debian_package_without_size_is_rejected(tmp_path):
    data = copy.deepcopy(VALID_TOOLCHAIN)
    del data["routes"]["debian"]["packages"][0]["size"]
    file = write_yaml(tmp_path / "tc.yaml", data)
    expected = f"{file}: routes.debian.packages[0]: missing required key 'size'"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_toolchain(file)


def test_release_asset_without_sha256_is_rejected(tmp_path):
    data = copy.deepcopy(VALID_TOOLCHAIN)
    del data["routes"]["release"][0]["sha256"]
    file = write_yaml(tmp_path / "tc.yaml", data)
    expected = f"{file}: routes.release[0]: missing required key 'sha256'"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        load_toolchain(file)


def test_toolchain_unknown_format_and_unknown_route(tmp_path):
    file = write_yaml(tmp_path / "tc.yaml", {**VALID_TOOLCHAIN, "format": 7})
    with pytest.raises(RecipeError, match=re.escape(f"{file}: format: unsupported format 7")):
        load_toolchain(file)
    data = copy.deepcopy(VALID_TOOLCHAIN)
    data["routes"]["debain"] = data["routes"].pop("debian")
    file = write_yaml(tmp_path / "tc2.yaml", data)
    with pytest.raises(RecipeError, match=re.escape("routes: unknown key 'debain' (did you mean 'debian'?)")):
        load_toolchain(file)


def test_toolchain_file_missing(tmp_path):
    expected = f"toolchain manifest not found: {tmp_path}/toolchains/nope.yaml"
    with pytest.raises(RecipeError, match=re.escape(expected)):
        toolchain_file(tmp_path, "nope")


# --- choosing a recipe ---------------------------------------------------------------------------------


def _newest_real_version() -> str:
    return max(available_recipes(ROOT), key=lambda v: tuple(int(p) for p in v.split(".")))


def test_select_recipe_default_is_the_newest():
    recipe = select_recipe(ROOT, None)
    assert recipe.short_version == _newest_real_version()


REAL_313 = ROOT / "recipes" / "cpython-3.13.yaml"


def test_select_recipe_by_minor_and_by_full_version():
    pinned = yaml.safe_load(REAL_313.read_text())["version"]
    assert pinned.startswith("3.13.")
    by_minor = select_recipe(ROOT, "3.13")
    assert by_minor.version == pinned
    by_full = select_recipe(ROOT, pinned)
    assert by_full.version == pinned
    assert by_full.file == by_minor.file == REAL_313


def test_select_recipe_unknown_minor_lists_supported_versions():
    with pytest.raises(UsageError, match=r"unknown CPython version '3\.99'") as info:
        select_recipe(ROOT, "3.99")
    supported = str(info.value).split("hint: supported versions: ", 1)[1].split(", ")
    assert supported == sorted(available_recipes(ROOT), key=lambda v: tuple(map(int, v.split("."))))
    assert "3.13" in supported
    assert info.value.exit_code == 2


def test_select_recipe_unknown_patch_release_says_what_the_recipe_builds():
    pinned = yaml.safe_load(REAL_313.read_text())["version"]
    with pytest.raises(UsageError, match=r"unknown CPython version '3\.13\.99'") as info:
        select_recipe(ROOT, "3.13.99")
    assert f"the 3.13 recipe builds {pinned}; supported versions: " in str(info.value)


def test_select_recipe_orders_versions_numerically(recipe_root):
    make_recipe(recipe_root, mutated(version="3.9.20"), "cpython-3.9.yaml")
    make_recipe(recipe_root, mutated(version="3.13.15"), "cpython-3.13.yaml")
    make_recipe(recipe_root, mutated(version="3.10.2"), "cpython-3.10.yaml")
    assert select_recipe(recipe_root, None).version == "3.13.15"
    assert select_recipe(recipe_root, "3.9").version == "3.9.20"
    with pytest.raises(UsageError, match=re.escape("hint: supported versions: 3.9, 3.10, 3.13")):
        select_recipe(recipe_root, "3.12")


def test_select_recipe_without_recipes(tmp_path):
    (tmp_path / "recipes").mkdir()
    with pytest.raises(UsageError, match="no recipes found in"):
        select_recipe(tmp_path, None)


def test_target_absent_raises_usage_error(recipe_root):
    recipe = load_recipe(make_recipe(recipe_root))
    assert recipe.target("wasi").triple == "wasm32-wasip1"
    with pytest.raises(UsageError, match=re.escape(
        "CPython 3.13.15 has no recipe for target 'emscripten' (cpython-3.13.yaml defines: wasi)"
    )):
        recipe.target("emscripten")


def test_real_recipe_target_lookup_is_consistent():
    recipe = select_recipe(ROOT, "3.13")
    for name in ("wasi", "emscripten"):
        if name in recipe.targets:
            assert recipe.target(name).name == name
        else:
            with pytest.raises(UsageError, match=f"has no recipe for target '{name}'"):
                recipe.target(name)


def test_host_defaults_to_the_triple_and_can_be_set(recipe_root):
    wasi = load_recipe(make_recipe(recipe_root)).target("wasi")
    assert wasi.host == "wasm32-wasip1" and wasi.setup_local == ()
    data = mutated(targets__wasi__host="wasm32-unknown-wasi",
                   targets__wasi__setup_local=["_ctypes _ctypes/_ctypes.c $(LIBFFI_CFLAGS) $(LIBFFI_LIBS)"])
    wasi = load_recipe(make_recipe(recipe_root, data)).target("wasi")
    assert (wasi.triple, wasi.host) == ("wasm32-wasip1", "wasm32-unknown-wasi")
    assert wasi.setup_local == ("_ctypes _ctypes/_ctypes.c $(LIBFFI_CFLAGS) $(LIBFFI_LIBS)",)


def test_setup_local_must_be_a_list_of_strings(recipe_root):
    with pytest.raises(RecipeError, match=r"targets\.wasi\.setup_local"):
        load_recipe(make_recipe(recipe_root, mutated(targets__wasi__setup_local="_ctypes x.c")))


def test_every_supported_version_has_expectations_for_each_of_its_targets():
    """A version is a recipe, its patches and one expectations file per target: nothing else to add."""
    for short, file in available_recipes(ROOT).items():
        for target in load_recipe(file).targets:
            exp = ROOT / "tests" / "expectations" / f"{target}-{short}.yaml"
            assert exp.is_file(), f"{file.name} builds {target} but {exp.name} is missing"


def test_python_code_does_not_branch_on_cpython_versions():
    """Versions differ only in data (recipes, patches, expectations). Comment lines branch on nothing."""
    pattern = re.compile(r"""version_info|(?:==|!=|<=|>=|<|>|\bin)\s*[(\[]?\s*["']?3\.\d|startswith\(["']3\.""")
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
            for p in sorted((ROOT / "src").rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line) and "noqa: version" not in line and not line.lstrip().startswith("#")]
    assert not hits, "\n".join(hits)


def test_setup_local_line_with_an_equals_sign_is_rejected(recipe_root):
    data = mutated(targets__wasi__setup_local=["_ctypes _ctypes/_ctypes.c -DHAVE_X=1"])
    with pytest.raises(RecipeError, match=r"targets\.wasi\.setup_local\[0\]: a Setup line may not contain '='") as info:
        load_recipe(make_recipe(recipe_root, data))
    assert "-DNAME instead of -DNAME=1" in str(info.value)
