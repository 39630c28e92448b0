"""Third-party C libraries: the recipes file, verified sources with Debian's repacked fallback, and build()
with a trivial script (mkdir/cp/printf only: no compiler runs here).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from wasmbuild import cache, libs
from wasmbuild.download import Sources
from wasmbuild.errors import BuildError, ChecksumError, DownloadError, RecipeError
from wasmbuild.recipe import project_root
from wasmbuild.toolchain import hosttools

LIBRARIES_YAML = project_root() / "recipes" / "libraries.yaml"
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# A build script that "installs" a library with mkdir/cp/printf only: no compiler or build tool in it.
INSTALL_SCRIPT = """\
mkdir -p "$PREFIX/lib" "$PREFIX/include"
cp foo.h "$PREFIX/include/"
printf '!<arch>\\n' > "$PREFIX/lib/libfoo.a"
printf '%s\\n' "$CFLAGS" > "$PREFIX/cflags.txt"
printf '%s\\n' "$JOBS" > "$PREFIX/jobs.txt"
printf '%s\\n' "$HOST" > "$PREFIX/host.txt"
"""
PROVIDES = {"FOO_CFLAGS": "-I{prefix}/include", "FOO_LIBS": "-L{prefix}/lib -lfoo"}


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache"


def entries(cache_root: Path, kind: str = "libs") -> list[str]:
    folder = cache_root / kind
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def source_tarball(build_tar, top: str = "foo-1.0") -> bytes:
    return build_tar([
        ("dir", top),
        ("file", f"{top}/foo.h", b"int foo(void);\n"),
        ("file", f"{top}/foo.c", b"int foo(void) { return 1; }\n"),
    ], "gz")


def library(name: str = "foo", *, url: str, data: bytes, repack: tuple[str, bytes] | None = None,
            debian: str | None = None, script: str = INSTALL_SCRIPT, provides: dict | None = None) -> dict:
    lib: dict = {
        "version": "1.0",
        "license": "MIT",
        "source": {"url": url, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
        "script": script,
        "provides": provides or PROVIDES,
    }
    if debian:
        lib["source"]["debian"] = debian
    if repack:
        path, rdata = repack
        lib["debian_repack"] = {"path": path, "sha256": hashlib.sha256(rdata).hexdigest(), "size": len(rdata)}
    return lib


def write_libraries(tmp_path: Path, libraries: dict, fmt: int = 1) -> Path:
    path = tmp_path / "recipes" / "libraries.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"format": fmt, "libraries": libraries}, sort_keys=False))
    return path


# --- the recipes file ------------------------------------------------------------------------------------


def test_project_libraries_load():
    loaded = libs.load_libraries(LIBRARIES_YAML)
    assert set(loaded) == {"zlib", "bzip2", "xz", "sqlite", "libffi"}
    for name, lib in loaded.items():
        assert lib.name == name
        assert SHA256.match(lib.source.sha256), name
        assert lib.source.url.startswith("https://"), name
        assert lib.version and lib.license and lib.script.strip(), name
        assert lib.provides and all("{prefix}" in v for v in lib.provides.values()), name
        assert lib.data["version"] == lib.version
        if lib.repack is not None:
            assert SHA256.match(lib.repack.sha256), name
            assert lib.repack.sha256 != lib.source.sha256, name  # a repack has other bytes
            assert lib.repack.url == f"debian:{lib.repack.debian}"
            assert lib.repack.debian.startswith("pool/main/")
            assert lib.repack.filename == lib.repack.debian.rsplit("/", 1)[-1]
            assert lib.repack.name == lib.repack.filename
            assert lib.repack.size and lib.repack.size > 0
        # A library has a Debian route: its byte-identical copy or its repack.
        assert lib.source.debian or lib.repack, name
    assert {n for n, lib in loaded.items() if lib.repack} == {"zlib", "sqlite", "libffi"}
    assert loaded["bzip2"].source.debian == "pool/main/b/bzip2/bzip2_1.0.8.orig.tar.gz"


def test_select_keeps_the_requested_order():
    owner = Path("recipes/cpython-3.13.yaml")
    assert [lib.name for lib in libs.select(LIBRARIES_YAML, ("xz", "zlib"), owner)] == ["xz", "zlib"]
    assert libs.select(LIBRARIES_YAML, (), owner) == []


def test_select_unknown_library_names_it():
    owner = Path("recipes/cpython-3.13.yaml")
    with pytest.raises(RecipeError) as info:
        libs.select(LIBRARIES_YAML, ("zlib", "openssl", "readline"), owner)
    assert str(info.value) == ("recipes/cpython-3.13.yaml: libraries: unknown openssl, readline (defined in "
                               "libraries.yaml: bzip2, libffi, sqlite, xz, zlib)")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.update(format=2), r"format: unsupported format 2 \(this wasmbuild reads 1\)"),
    (lambda d: d["libraries"]["foo"]["debian_repack"].update(sha256="ABC"),
     r"libraries\.foo\.debian_repack\.sha256: expected a sha256"),
    (lambda d: d["libraries"]["foo"].update(sript="true"), r"libraries\.foo: unknown key 'sript' \(did you mean "
                                                           r"'script'\?\)"),
    (lambda d: d["libraries"]["foo"].pop("provides"), r"libraries\.foo: missing required key 'provides'"),
    (lambda d: d["libraries"]["foo"]["source"].update(url="ftp://x/y.tar.gz"), r"source\.url: expected an http"),
])
def test_load_libraries_errors(tmp_path, mutate, message):
    data = {"format": 1, "libraries": {"foo": library(url="https://example.invalid/foo-1.0.tar.gz", data=b"x",
                                                       repack=("pool/main/f/foo/foo_1.0.orig.tar.gz", b"y"))}}
    mutate(data)
    path = tmp_path / "libraries.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=message) as info:
        libs.load_libraries(path)
    assert str(info.value).startswith(f"{path}: ")


# --- fetch_source ----------------------------------------------------------------------------------------

REPACK_PATH = "pool/main/f/foo/foo_1.0.orig.tar.gz"


@pytest.fixture
def served(tmp_path, http_server, build_tar):
    """A library whose upstream and repack are both known; the test decides what the server serves."""
    upstream = source_tarball(build_tar)
    repacked = source_tarball(build_tar, top="foo-1.0+dfsg")
    url = http_server.url("/upstream/foo-1.0.tar.gz")
    lib = libs.load_libraries(write_libraries(tmp_path, {
        "foo": library(url=url, data=upstream, repack=(REPACK_PATH, repacked)),
    }))["foo"]
    return lib, upstream, repacked


def test_fetch_source_upstream(served, cache_root, http_server):
    lib, upstream, _ = served
    http_server.serve("/upstream/foo-1.0.tar.gz", upstream)
    got, item = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert item is lib.source
    assert (got.route, got.url) == ("upstream", lib.source.url)
    assert got.path.read_bytes() == upstream
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz"]


def test_fetch_source_falls_back_to_the_debian_repack(served, cache_root, http_server):
    lib, _, repacked = served
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    got, item = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian") + "/"))
    assert item is lib.repack
    assert got.url == http_server.url(f"/debian/{REPACK_PATH}")
    assert got.path.read_bytes() == repacked
    assert got.path.name == "foo_1.0.orig.tar.gz"
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz", f"/debian/{REPACK_PATH}"]
    # Again: the repack comes from the download cache.
    again, item = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert item is lib.repack and again.path == got.path
    assert http_server.hits(f"/debian/{REPACK_PATH}") == 1


def test_fetch_source_records_the_debian_route_for_a_repack(served, cache_root, http_server):
    lib, _, repacked = served
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    got, _ = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert got.route == "debian"


def tampered(data: bytes) -> bytes:
    """The same number of bytes, one of them changed."""
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def test_fetch_source_tampered_upstream_does_not_fall_back(served, cache_root, http_server):
    lib, upstream, repacked = served
    http_server.serve("/upstream/foo-1.0.tar.gz", tampered(upstream))
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz"]
    assert not list((cache_root / "downloads").rglob("*.tar.gz"))


@pytest.mark.parametrize("body", [b"not the pinned bytes", b"x" * 4096])
def test_fetch_source_upstream_of_another_size_falls_back_to_the_verified_repack(served, cache_root, http_server,
                                                                                   body):
    # A body of another size than the pinned one is taken for a broken transfer or error page (DownloadError,
    # as in download.py), not tampering: the next route is tried, and what it delivers is verified by its own hash.
    lib, _, repacked = served
    http_server.serve("/upstream/foo-1.0.tar.gz", body)
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    got, item = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert item == lib.repack and got.route == "debian"
    assert hashlib.sha256(got.path.read_bytes()).hexdigest() == lib.repack.sha256


def test_fetch_source_tampered_repack(served, cache_root, http_server):
    lib, _, repacked = served
    http_server.serve(f"/debian/{REPACK_PATH}", tampered(repacked))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert not list((cache_root / "downloads").rglob("*.tar.gz"))


def test_fetch_source_both_missing_names_both_routes(served, cache_root, http_server):
    lib, _, _ = served
    with pytest.raises(DownloadError) as info:
        libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert not isinstance(info.value, ChecksumError)
    message = str(info.value)
    assert "/upstream/foo-1.0.tar.gz: HTTP 404" in message
    assert "\n  - debian (repacked orig): could not obtain foo_1.0.orig.tar.gz" in message
    assert f"/debian/{REPACK_PATH}: HTTP 404" in message
    assert "hint: " in message


def test_fetch_source_without_a_debian_mirror_does_not_use_the_repack(served, cache_root, http_server):
    lib, _, repacked = served
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    with pytest.raises(DownloadError) as info:
        libs.fetch_source(lib, cache_root, Sources())
    assert "repacked" not in str(info.value)
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz"]


def test_fetch_source_without_a_repack(tmp_path, cache_root, http_server, build_tar):
    data = source_tarball(build_tar)
    url = http_server.url("/upstream/foo-1.0.tar.gz")
    lib = libs.load_libraries(write_libraries(tmp_path, {"foo": library(url=url, data=data)}))["foo"]
    assert lib.repack is None
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert "repacked" not in str(info.value)
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz"]


def test_fetch_source_identical_debian_copy(tmp_path, cache_root, http_server, build_tar):
    data = source_tarball(build_tar)
    path = "pool/main/f/foo/foo_1.0.orig.tar.gz"
    http_server.serve(f"/debian/{path}", data)
    lib = libs.load_libraries(write_libraries(tmp_path, {
        "foo": library(url=http_server.url("/upstream/foo-1.0.tar.gz"), data=data, debian=path),
    }))["foo"]
    got, item = libs.fetch_source(lib, cache_root, Sources(debian_mirror=http_server.url("/debian")))
    assert item is lib.source
    assert (got.route, got.url) == ("debian", http_server.url(f"/debian/{path}"))
    assert got.path.read_bytes() == data


# --- build ------------------------------------------------------------------------------------------------


@pytest.fixture
def foo(tmp_path, http_server, build_tar):
    """Write a library `foo` served upstream by the local server; returns a loader taking a script."""
    data = source_tarball(build_tar)
    url = http_server.serve("/upstream/foo-1.0.tar.gz", data)

    def make(script: str = INSTALL_SCRIPT, provides: dict | None = None) -> libs.Library:
        return libs.load_libraries(write_libraries(tmp_path, {
            "foo": library(url=url, data=data, script=script, provides=provides),
        }))["foo"]

    return make


def build(lib: libs.Library, cache_root: Path, tmp_path: Path, **overrides) -> libs.Built:
    kwargs = {"cache_root": cache_root, "sources": Sources(), "target": "wasm32-unknown-emscripten",
              "toolchain_key": "tc-1", "env": {"HOST": "wasm32-unknown-emscripten", "CFLAGS": "-O2"}, "jobs": 3,
              "log_dir": tmp_path / "logs"}
    return libs.build(lib, **{**kwargs, **overrides})


def test_build_installs_into_a_cache_entry(foo, cache_root, tmp_path, http_server):
    lib = foo()
    built = build(lib, cache_root, tmp_path)
    entry = built.prefix.parent
    assert built.prefix == entry / "prefix"
    assert entry.parent == cache_root / "libs"
    assert re.fullmatch(r"foo-1\.0-wasm32-unknown-emscripten-[0-9a-f]{12}", entry.name)
    assert (built.prefix / "lib" / "libfoo.a").read_bytes() == b"!<arch>\n"
    assert (built.prefix / "include" / "foo.h").read_text() == "int foo(void);\n"
    assert not (entry / "src").exists()  # the unpacked source is removed
    # The script's environment.
    assert (built.prefix / "cflags.txt").read_text() == f"-O2 -ffile-prefix-map={entry / 'src'}=/src/foo\n"
    assert (built.prefix / "jobs.txt").read_text() == "3\n"
    assert (built.prefix / "host.txt").read_text() == "wasm32-unknown-emscripten\n"
    # Record, stamp and configure variables.
    source = {"file": "foo-1.0.tar.gz", "sha256": lib.source.sha256, "url": lib.source.url,
              "fetch": {"route": "upstream", "url": lib.source.url}}
    assert built.record == {"name": "foo", "version": "1.0", "license": "MIT", **source}
    stamp = cache.read_stamp(entry)
    assert stamp["source"] == source and cache.is_valid(entry, stamp["key"])
    assert built.configure_env() == {"FOO_CFLAGS": f"-I{built.prefix}/include",
                                     "FOO_LIBS": f"-L{built.prefix}/lib -lfoo"}
    assert libs.configure_env([built]) == built.configure_env()
    assert libs.path_map([built]) == {str(built.prefix): "/opt/foo"}
    log_file = tmp_path / "logs" / "lib-foo-wasm32-unknown-emscripten.log"
    assert log_file.read_text().startswith("# foo 1.0 for wasm32-unknown-emscripten\n")
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz"]


def test_build_is_cached(foo, cache_root, tmp_path, http_server):
    lib = foo()
    first = build(lib, cache_root, tmp_path)
    (first.prefix / "marker").write_text("kept")
    # PATH, EM_CONFIG and EMSDK_PYTHON do not change the key; the rest of the environment does.
    again = build(lib, cache_root, tmp_path, env={"HOST": "wasm32-unknown-emscripten", "CFLAGS": "-O2",
                                                   "PATH": "/elsewhere", "EM_CONFIG": "/x", "EMSDK_PYTHON": "/y"})
    assert again.prefix == first.prefix and (again.prefix / "marker").is_file()
    # Same record, same key order (it is written into BUILD.json: the archive must not depend on the cache).
    assert list(again.record.items()) == list(first.record.items())
    assert http_server.hits("/upstream/foo-1.0.tar.gz") == 1
    other = build(lib, cache_root, tmp_path, env={"HOST": "wasm32-unknown-emscripten", "CFLAGS": "-O0"})
    assert other.prefix != first.prefix
    assert build(lib, cache_root, tmp_path, toolchain_key="tc-2").prefix not in {first.prefix, other.prefix}
    assert build(lib, cache_root, tmp_path, target="wasm32-wasip1").prefix.parent.name.startswith(
        "foo-1.0-wasm32-wasip1-")
    assert len(entries(cache_root)) == 4


def test_build_records_the_repack_it_used(tmp_path, cache_root, http_server, build_tar):
    repacked = source_tarball(build_tar, top="foo-1.0+dfsg")
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    lib = libs.load_libraries(write_libraries(tmp_path, {
        "foo": library(url=http_server.url("/upstream/foo-1.0.tar.gz"), data=b"upstream bytes",
                       repack=(REPACK_PATH, repacked)),
    }))["foo"]
    built = build(lib, cache_root, tmp_path, sources=Sources(debian_mirror=http_server.url("/debian")))
    assert (built.prefix / "include" / "foo.h").is_file()
    assert built.record["file"] == "foo_1.0.orig.tar.gz"
    assert built.record["sha256"] == lib.repack.sha256
    # By identity: Debian's pool path of the repacked source; the mirror it came from is the fetch's.
    assert built.record["url"] == f"debian:{REPACK_PATH}"
    assert built.record["fetch"] == {"route": "debian", "url": http_server.url(f"/debian/{REPACK_PATH}")}


def test_a_repack_that_needs_host_tools_gets_the_pinned_ones_first_on_path(tmp_path, cache_root, http_server,
                                                                           build_tar, monkeypatch):
    repacked = source_tarball(build_tar, top="foo-1.0+dfsg")
    http_server.serve(f"/debian/{REPACK_PATH}", repacked)
    data = library(url=http_server.url("/upstream/foo-1.0.tar.gz"), data=b"upstream bytes",
                   repack=(REPACK_PATH, repacked),
                   script=INSTALL_SCRIPT + 'command -v tclsh > "$PREFIX/tclsh.txt"\n')
    data["debian_repack"]["tools"] = ["tcl"]
    lib = libs.load_libraries(write_libraries(tmp_path, {"foo": data}))["foo"]
    assert lib.repack_tools == ("tcl",)
    tool_bin = tmp_path / "tools" / "tcl" / "bin"
    tool_bin.mkdir(parents=True)
    (tool_bin / "tclsh").write_text("#!/bin/sh\n")
    (tool_bin / "tclsh").chmod(0o755)
    asked = []

    def ensure(names, project, cache_root_, sources):
        asked.append(tuple(names))
        tool = hosttools.Tool("tcl", "8.6.13", {"bin": {"tclsh": "usr/bin/tclsh8.6"}})
        return [hosttools.Provisioned(tool, tool_bin, ({"name": "tcl8.6.deb", "sha256": "0" * 64},))] if names else []

    monkeypatch.setattr(hosttools, "ensure", ensure)
    built = build(lib, cache_root, tmp_path, sources=Sources(debian_mirror=http_server.url("/debian")))
    assert asked == [("tcl",)]
    assert (built.prefix / "tclsh.txt").read_text().strip() == str(tool_bin / "tclsh")
    assert built.record["tools"] == [{"name": "tcl", "version": "8.6.13",
                                      "inputs": [{"name": "tcl8.6.deb", "sha256": "0" * 64}]}]
    again = build(lib, cache_root, tmp_path, sources=Sources(debian_mirror=http_server.url("/debian")))
    assert list(again.record.items()) == list(built.record.items())  # the same record from the cache


def test_the_upstream_source_needs_no_host_tools(foo, cache_root, tmp_path, monkeypatch):
    monkeypatch.setattr(hosttools, "ensure", lambda names, *a: [] if not names else pytest.fail(f"asked {names}"))
    assert "tools" not in build(foo(), cache_root, tmp_path).record


def test_failing_script_leaves_no_entry(foo, cache_root, tmp_path):
    lib = foo('mkdir -p "$PREFIX/lib"\necho "building foo: something broke"\nexit 3\n')
    with pytest.raises(BuildError, match=r"the build script of foo failed with exit code 3; full log: ") as info:
        build(lib, cache_root, tmp_path)
    assert entries(cache_root) == []
    log_file = tmp_path / "logs" / "lib-foo-wasm32-unknown-emscripten.log"
    assert str(log_file) in str(info.value)
    assert "building foo: something broke" in log_file.read_text()


def test_script_without_a_library_leaves_no_entry(foo, cache_root, tmp_path):
    lib = foo('mkdir -p "$PREFIX/include"\ncp foo.h "$PREFIX/include/"\n')
    with pytest.raises(BuildError, match="installed no static library or headers"):
        build(lib, cache_root, tmp_path)
    assert entries(cache_root) == []


def test_script_without_the_provided_headers_leaves_no_entry(foo, cache_root, tmp_path):
    lib = foo('mkdir -p "$PREFIX/lib"\nprintf x > "$PREFIX/lib/libfoo.a"\n')
    with pytest.raises(BuildError, match="installed no static library or headers"):
        build(lib, cache_root, tmp_path)
    assert entries(cache_root) == []


def test_unset_variable_fails_the_script(foo, cache_root, tmp_path):
    # sh -eu: a typo in a variable name is an error, not an empty string.
    lib = foo('mkdir -p "$PREFIX/lib" "$PREFX/include"\n')
    with pytest.raises(BuildError, match="the build script of foo failed"):
        build(lib, cache_root, tmp_path)
    assert entries(cache_root) == []


def test_configure_env_of_several_libraries(tmp_path):
    lib_a = libs.Library("a", "1", "MIT", None, None, "true", {"A_CFLAGS": "-I{prefix}/include"}, {})
    lib_b = libs.Library("b", "2", "MIT", None, None, "true",
                         {"B_LIBS": "-L{prefix}/lib -lb", "B_CFLAGS": "-I{prefix}/include -DB={prefix}"}, {})
    built = [libs.Built(lib_a, tmp_path / "a", {}), libs.Built(lib_b, tmp_path / "b", {})]
    assert libs.configure_env(built) == {
        "A_CFLAGS": f"-I{tmp_path}/a/include",
        "B_CFLAGS": f"-I{tmp_path}/b/include -DB={tmp_path}/b",
        "B_LIBS": f"-L{tmp_path}/b/lib -lb",
    }
    assert libs.path_map(built) == {str(tmp_path / "a"): "/opt/a", str(tmp_path / "b"): "/opt/b"}


def test_a_library_build_is_keyed_by_library_toolchain_and_target_not_by_where_the_cache_is(foo, tmp_path):
    # One build serves every CPython version (no recipe epoch in the environment), and the cache directory's own
    # path, which the WASI SDK's compiler path contains, does not change the key.
    lib = foo()
    keys = []
    for name in ("cache-a", "cache-b"):
        root = tmp_path / name
        env = {"HOST": "wasm32-wasip1", "CC": f"{root}/toolchains/sdk/bin/clang --sysroot={root}/toolchains/sdk/s",
               "CFLAGS": f"-O2 -ffile-prefix-map={root}/toolchains/sdk=/wasi-sdk"}
        built = build(lib, root, tmp_path, env=env, target="wasm32-wasip1")
        keys.append(built.prefix.parent.name)
        assert (built.prefix / "cflags.txt").read_text().startswith(f"-O2 -ffile-prefix-map={root}")
    assert keys[0] == keys[1]
    other = build(lib, tmp_path / "cache-a", tmp_path, env={"HOST": "wasm32-wasip1", "CFLAGS": "-O3"},
                  target="wasm32-wasip1")
    assert other.prefix.parent.name != keys[0]


def test_library_scripts_get_the_fixed_source_date_epoch(foo, cache_root, tmp_path):
    lib = foo(INSTALL_SCRIPT + 'printf "%s" "$SOURCE_DATE_EPOCH" > "$PREFIX/epoch.txt"\n')
    built = build(lib, cache_root, tmp_path)
    assert (built.prefix / "epoch.txt").read_text() == str(libs.LIBS_SOURCE_DATE_EPOCH)
