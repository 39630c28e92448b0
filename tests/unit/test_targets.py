"""Each target's configure argv and environment, its staging and its record, without a compiler.

The host build itself is faked (a directory holding what make would leave); everything the targets derive from
the recipe, the toolchain and the paths is the real code. A changed flag, path mapping or record field fails here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path

import pytest

from wasmbuild import kit, package, pipeline
from wasmbuild.artifact import NodeRuntime, WasiRuntime, WebRuntime, artifact_runtime
from wasmbuild.download import Fetched, Sources
from wasmbuild.files import json_text
from wasmbuild.libs import Built, Library
from wasmbuild.recipe import Download, load_recipe, project_root
from wasmbuild.record import FIELDS, RECORD_FORMAT, split_provenance
from wasmbuild.steps import BuildPython, Context, HostBuild, SourceTree
from wasmbuild.targets import TARGET_NAMES, TARGETS, get_target
from wasmbuild.targets.base import PathMap
from wasmbuild.targets.emscripten import PRE_JS, PRE_JS_NAME
from wasmbuild.toolchain import Toolchain

ROOT = project_root()
BUILD_TRIPLE = "x86_64-pc-linux-gnu"
RECIPE_OPTIONS = {
    "configure_args": ("--with-x", "--without-y"),
    "config_cache": {"ac_cv_b": "no", "ac_cv_a": "yes"},
    "cflags": ("-O3", "-DX"),
    "ldflags": ("-Wl,-z,stack-size=1",),
    "make_args": ("V=1",),
    "setup_local": ("_m _m.c",),
}


@pytest.fixture(autouse=True)
def no_config_guess(monkeypatch):
    monkeypatch.setattr("wasmbuild.targets.base.build_triple", lambda src: BUILD_TRIPLE)
    monkeypatch.setattr("wasmbuild.targets.emscripten.build_triple", lambda src: BUILD_TRIPLE)
    monkeypatch.setattr("wasmbuild.targets.wasi.build_triple", lambda src: BUILD_TRIPLE)


def make_ctx(tmp_path: Path, target: str, **options) -> Context:
    recipe = load_recipe(ROOT / "recipes" / "cpython-3.13.yaml", ROOT / "patches")
    opts = dataclasses.replace(recipe.target(target), **options)
    recipe = dataclasses.replace(recipe, targets={**recipe.targets, target: opts})
    return Context(root=ROOT, cache=tmp_path / "cache", dist=tmp_path / "dist", recipe=recipe, target=opts,
                   sources=Sources(), jobs=3)


def toolchain(tmp_path: Path, name: str) -> Toolchain:
    return Toolchain(name, "1.0", tmp_path / "cache" / "toolchains" / name, "release", {"clang": "19"},
                     [{"name": f"{name}.tar.gz", "sha256": "1" * 64, "size": 1, "url": "u",
                       "fetch": {"route": "upstream", "url": "u"}}])


def library(tmp_path: Path, name: str = "zlib") -> Built:
    lib = Library(name=name, version="1.3", license="Zlib", source=Download(url="https://x/z.tgz", sha256="2" * 64),
                  repack=None, script="true", provides={"ZLIB_CFLAGS": "-I{prefix}/include",
                                                       "ZLIB_LIBS": "-L{prefix}/lib -lz"}, data={"v": 1})
    return Built(lib, tmp_path / "cache" / "libs" / name / "prefix",
                 {"name": name, "version": "1.3", "license": "Zlib", "file": "z.tgz", "sha256": "2" * 64})


def sources(tmp_path: Path) -> tuple[SourceTree, BuildPython]:
    src = tmp_path / "cache" / "sources" / "cpython"
    fetched = Fetched(tmp_path / "cache" / "downloads" / "Python.tgz", "upstream", "https://python.example/Python.tgz")
    patches = [{"file": "p.patch", "sha256": "3" * 64, "reason": "r", "upstream": "u"}]
    return (SourceTree(src, "srckey", fetched, patches),
            BuildPython(tmp_path / "cache" / "build-python" / "python", "bpkey", "gcc (Debian 12.2.0) 12.2.0"))


def no_machine_paths(data, tmp_path: Path) -> None:
    assert str(tmp_path) not in json.dumps(data)


@pytest.mark.parametrize("target_name", ["wasi", "emscripten"])
def test_configure_is_given_install_and_mkdir_by_name_and_a_recipe_may_override(tmp_path, target_name):
    # configure would write the absolute paths it finds on PATH into the artifact's sysconfig data.
    target = get_target(target_name)
    src, bp = sources(tmp_path)
    ctx = make_ctx(tmp_path, target_name)
    s = target.host_settings(ctx, src, tmp_path / "b", toolchain(tmp_path, "tc"), bp, [])
    assert "ac_cv_path_install=install -c" in s.argv and "ac_cv_path_mkdir=mkdir" in s.argv
    assert "ac_cv_path_LLVM_PROFDATA=llvm-profdata" in s.argv
    ctx = make_ctx(tmp_path, target_name, config_cache={"ac_cv_path_mkdir": "/opt/bin/mkdir"})
    s = target.host_settings(ctx, src, tmp_path / "b", toolchain(tmp_path, "tc"), bp, [])
    assert "ac_cv_path_mkdir=/opt/bin/mkdir" in s.argv and "ac_cv_path_mkdir=mkdir" not in s.argv
    assert s.record["config_cache"]["ac_cv_path_mkdir"] == "/opt/bin/mkdir"


# --- the registry ---------------------------------------------------------------------------------------------


def test_the_registry_names_each_target_and_the_recipes_accept_exactly_those():
    assert set(TARGET_NAMES) == {"wasi", "emscripten"}
    assert all(TARGETS[n].name == n for n in TARGET_NAMES)
    # Each kind of artifact (artifact.py) belongs to a registered target and variant and says its sys.platform.
    assert {r.sys_platform for r in (WasiRuntime, NodeRuntime)} == {"wasi", "emscripten"}
    assert all(get_target(r.target, r.variant).variant == r.variant for r in (WasiRuntime, NodeRuntime, WebRuntime))
    # The recipes accept exactly the registered targets: recipe.py checks names against names.TARGET_NAMES (it sits
    # below the targets), which must equal the registry, in its order.
    from wasmbuild import names
    from wasmbuild.recipe import RECIPE_SCHEMA, recipe_schema

    assert names.TARGET_NAMES == tuple(TARGETS) == TARGET_NAMES
    assert set(recipe_schema(names.TARGET_NAMES)["targets"]) == set(TARGET_NAMES) and RECIPE_SCHEMA["targets"] == {}


def test_unknown_target_is_a_usage_error():
    from wasmbuild.errors import UsageError

    with pytest.raises(UsageError, match="(?s)unknown target 'wasm64'.*choose one of: wasi, emscripten"):
        get_target("wasm64")


def test_the_artifacts_target_is_told_by_its_files(tmp_path):
    (tmp_path / "python.wasm").write_bytes(b"\0asm")
    assert artifact_runtime(tmp_path).target == "wasi"
    (tmp_path / "python.js").write_text("")
    assert artifact_runtime(tmp_path).target == "emscripten"


# --- WASI -------------------------------------------------------------------------------------------------------


def test_wasi_configure_argv_env_and_record(tmp_path):
    ctx = make_ctx(tmp_path, "wasi", **RECIPE_OPTIONS)
    target = get_target("wasi")
    tc = toolchain(tmp_path, "wasi-sdk")
    src, bp = sources(tmp_path)
    build = tmp_path / "cache" / "hosts" / "h"
    s = target.host_settings(ctx, src, build, tc, bp, [])
    assert s.argv == [os.path.relpath(src.path / "configure", build), "--host=wasm32-wasip1",
                      f"--build={BUILD_TRIPLE}", f"--with-build-python={bp.python}", "--with-x", "--without-y",
                      "ac_cv_a=yes", "ac_cv_b=no", "ac_cv_path_LLVM_PROFDATA=llvm-profdata",
                      "ac_cv_path_install=install -c", "ac_cv_path_mkdir=mkdir"]
    sdk, sysroot = tc.path, tc.path / "share" / "wasi-sysroot"
    assert s.env["CC"] == f"{sdk}/bin/clang --target=wasm32-wasip1 --sysroot={sysroot}"
    assert s.env["CXX"] == f"{sdk}/bin/clang++ --target=wasm32-wasip1 --sysroot={sysroot}"
    assert s.env["AR"] == f"{sdk}/bin/llvm-ar" and s.env["RANLIB"] == f"{sdk}/bin/ranlib"
    assert s.env["CFLAGS"] == (f"-ffile-prefix-map={build}=/build/cpython -ffile-prefix-map={src.path}=/src/cpython "
                               f"-ffile-prefix-map={sdk}=/wasi-sdk -O3 -DX")
    assert s.env["LDFLAGS"] == "-Wl,-z,stack-size=1"
    assert s.env["PKG_CONFIG_PATH"] == "" and s.env["PKG_CONFIG_SYSROOT_DIR"] == str(sysroot)
    assert s.env["SOURCE_DATE_EPOCH"] == str(ctx.recipe.source_date_epoch)
    assert s.env["CONFIG_SITE"] == str(src.path / ctx.target.config_site)
    assert s.env["PATH"].split(os.pathsep)[0] == str(sdk / "bin")
    assert s.record == {
        "args": ["--host=wasm32-wasip1", "--build=<build triple>", "--with-build-python=<build-python>",
                 "--with-x", "--without-y"],
        "config_site": ctx.target.config_site,
        "config_cache": {"ac_cv_a": "yes", "ac_cv_b": "no", "ac_cv_path_LLVM_PROFDATA": "llvm-profdata",
                         "ac_cv_path_install": "install -c", "ac_cv_path_mkdir": "mkdir"},
        "cflags": ["-ffile-prefix-map=<build>=/build/cpython", "-ffile-prefix-map=<src>=/src/cpython",
                   "-ffile-prefix-map=<sdk>=/wasi-sdk", "-O3", "-DX"],
        "ldflags": ["-Wl,-z,stack-size=1"],
        "compilers": {"CC": "<sdk>/bin/clang", "CPP": "<sdk>/bin/clang-cpp", "CXX": "<sdk>/bin/clang++",
                      "AR": "<sdk>/bin/llvm-ar", "RANLIB": "<sdk>/bin/ranlib"},
    }
    assert list(s.record) == ["args", "config_site", "config_cache", "cflags", "ldflags", "compilers"]
    no_machine_paths(s.record, tmp_path)


def test_wasi_keys_on_the_whole_toolchain_record(tmp_path):
    target = get_target("wasi")
    tc = toolchain(tmp_path, "wasi-sdk")
    assert target.toolchain_key(tc) == tc.record()
    assert target.host_key_extra([]) == {} and target.host_files() == {}
    assert target.host_outputs == ("python.wasm",)


def test_wasi_worker_and_guest_paths(tmp_path):
    cmd, shown = WasiRuntime(tmp_path / "art").worker_command(tmp_path / "cache")
    assert cmd == [sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(tmp_path / "cache"), "--dir", "/::/",
                   "--inherit-env", "--env", "PATH=", "--private-lib", str(tmp_path / "art"), "--"]
    assert WasiRuntime(tmp_path).guest_path(tmp_path / "work", "x.py") == "/x.py"


# --- Emscripten -------------------------------------------------------------------------------------------------


def test_emscripten_configure_argv_env_and_record(tmp_path):
    ctx = make_ctx(tmp_path, "emscripten", **RECIPE_OPTIONS)
    target = get_target("emscripten")
    tc = toolchain(tmp_path, "emscripten")
    src, bp = sources(tmp_path)
    build = tmp_path / "cache" / "hosts" / "h"
    zlib = library(tmp_path)
    s = target.host_settings(ctx, src, build, tc, bp, [zlib])
    assert s.argv == ["emconfigure", os.path.relpath(src.path / "configure", build), "--host=wasm32-unknown-emscripten",
                      f"--build={BUILD_TRIPLE}", f"--with-build-python={bp.python}", "--with-x", "--without-y",
                      "ac_cv_a=yes", "ac_cv_b=no", "ac_cv_path_LLVM_PROFDATA=llvm-profdata",
                      "ac_cv_path_install=install -c", "ac_cv_path_mkdir=mkdir"]
    assert s.env["CFLAGS"] == (f"-ffile-prefix-map={build}=/build/cpython -ffile-prefix-map={src.path}=/src/cpython "
                               f"-ffile-prefix-map={tc.path}=/emsdk -ffile-prefix-map={zlib.prefix}=/opt/zlib -O3 -DX")
    assert s.env["LDFLAGS"] == (f"-Wl,-z,stack-size=1 -sEXPORTED_RUNTIME_METHODS=ENV --pre-js={build / PRE_JS_NAME}")
    assert s.env["ZLIB_CFLAGS"] == f"-I{zlib.prefix}/include" and s.env["ZLIB_LIBS"] == f"-L{zlib.prefix}/lib -lz"
    assert s.env["EM_CONFIG"] == str(tc.path / "emscripten-config.py")
    assert s.env["PKG_CONFIG_PATH"] == "" and s.env["PKG_CONFIG_LIBDIR"] == "" and s.env["TZ"] == "UTC"
    assert s.env["CONFIG_SITE"] == str(src.path / ctx.target.config_site)
    assert s.record == {
        "args": ["--host=wasm32-unknown-emscripten", "--build=<build triple>", "--with-build-python=<build-python>",
                 "--with-x", "--without-y"],
        "config_site": ctx.target.config_site,
        "config_cache": {"ac_cv_a": "yes", "ac_cv_b": "no", "ac_cv_path_LLVM_PROFDATA": "llvm-profdata",
                         "ac_cv_path_install": "install -c", "ac_cv_path_mkdir": "mkdir"},
        "cflags": ["-ffile-prefix-map=<build>=/build/cpython", "-ffile-prefix-map=<src>=/src/cpython",
                   "-ffile-prefix-map=<emsdk>=/emsdk", "-O3", "-DX"],
        "ldflags": ["-Wl,-z,stack-size=1", "-sEXPORTED_RUNTIME_METHODS=ENV", f"--pre-js=<build>/{PRE_JS_NAME}"],
        "pre_js": PRE_JS,
        "libraries": {"ZLIB_CFLAGS": "-I/opt/zlib/include", "ZLIB_LIBS": "-L/opt/zlib/lib -lz"},
        "make_args": ["V=1"],
        "compilers": {"CC": "emcc", "CXX": "em++", "AR": "emar"},
    }
    no_machine_paths(s.record, tmp_path)


def test_emscripten_keys_on_the_compiler_not_on_node_or_the_fetch_route(tmp_path):
    target = get_target("emscripten")
    tc = toolchain(tmp_path, "emscripten")
    tc.components["node"] = "20.18.0"
    key = target.toolchain_key(tc)
    assert "node" not in key["components"] and key["inputs"] == [{"name": "emscripten.tar.gz", "sha256": "1" * 64}]
    zlib = library(tmp_path)
    assert target.host_key_extra([zlib]) == {"libraries": [{"v": 1}], "pre_js": PRE_JS}
    assert target.host_files() == {PRE_JS_NAME: PRE_JS}
    assert target.host_outputs == ("python.js", "python.wasm")


def test_emscripten_libraries_get_the_compiler_environment(tmp_path, monkeypatch):
    ctx = make_ctx(tmp_path, "emscripten")
    target = get_target("emscripten")
    tc = toolchain(tmp_path, "emscripten")
    seen = {}

    def build_all(libs, **kwargs):
        seen.update(names=[lib.name for lib in libs], **kwargs)
        return []

    monkeypatch.setattr("wasmbuild.libs.build_all", build_all)
    target.build_libraries(ctx, tc, sources(tmp_path)[0])
    assert seen["names"] == list(ctx.target.libraries)
    env = seen["env"]
    assert (env["CC"], env["AR"], env["HOST"], env["BUILD"]) == ("emcc", "emar", "wasm32-unknown-emscripten",
                                                                 BUILD_TRIPLE)
    assert env["CONFIGURE_WRAPPER"] == "emconfigure" and env["CFLAGS"] == "-O2 -fPIC"
    assert seen["target"] == "wasm32-emscripten" and seen["toolchain_key"] == target.toolchain_key(tc)


def test_emscripten_worker_and_guest_paths(tmp_path):
    from wasmbuild.errors import UsageError

    runtime = NodeRuntime(tmp_path)
    with pytest.raises(UsageError, match="no python.sh launcher"):
        runtime.worker_command(tmp_path / "cache")
    (tmp_path / "python.sh").write_text("")
    assert runtime.worker_command(tmp_path / "cache") == ([str(tmp_path / "python.sh")], ["<artifact>/python.sh"])
    assert runtime.guest_path(tmp_path / "work", "x.py") == str(tmp_path / "work" / "x.py")
    with pytest.raises(UsageError, match="--max-memory applies to WASI artifacts only"):
        runtime.run_python(["-c", "1"], tmp_path / "cache", [], max_memory=1 << 20)


# --- the shared skeleton: path map, staging, record ----------------------------------------------------------


def test_path_map_records_placeholders_only_for_named_paths(tmp_path):
    pm = PathMap((("build", tmp_path / "b", "/build/cpython"),), ((tmp_path / "z", "/opt/z"),))
    assert pm.mapping() == {str(tmp_path / "b"): "/build/cpython", str(tmp_path / "z"): "/opt/z"}
    assert pm.prefix_map_flags() == [f"-ffile-prefix-map={tmp_path / 'b'}=/build/cpython",
                                     f"-ffile-prefix-map={tmp_path / 'z'}=/opt/z"]
    assert pm.recorded_flags() == ["-ffile-prefix-map=<build>=/build/cpython"]


def fake_kit_install(build: Path, src: Path) -> None:
    """What `make inclinstall libainstall DESTDIR=_install` leaves (a few files of each kind)."""
    root = build / kit.KIT_INSTALL / "usr" / "local"
    inc = root / "include" / "python3.13"
    inc.mkdir(parents=True)
    (inc / "Python.h").write_text("/* Python.h */\n")
    (inc / "pyconfig.h").write_text("#define HAVE_X 1\n")
    config = root / "lib" / "python3.13" / "config-3.13-wasm32-wasi"
    config.mkdir(parents=True)
    (config / "Makefile").write_text(f"srcdir= {src}\nabs_builddir= {build}\nprefix= /usr/local\n")
    (config / "libpython3.13.a").write_bytes(b"!<arch>\nlibpython")
    (config / "python.o").write_bytes(b"\0asm object")
    (config / "config.c").write_text("struct _inittab _PyImport_Inittab[] = {{0, 0}};\n")
    (config / "makesetup").write_text("#!/bin/sh\n")
    (config / "makesetup").chmod(0o755)
    (root / "lib" / "pkgconfig").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "python3.13-config").write_text(
        f'#!/bin/sh\nprefix_build="/usr/local"\nLIBS_EMBED="-lpython${{VERSION}}${{ABIFLAGS}} -ldl $SYSLIBS"\n'
        f'LIBPL="{build}/x"\n')
    (build / "Modules" / "expat").mkdir(parents=True)
    (build / "Modules" / "expat" / "libexpat.a").write_bytes(b"!<arch>\nexpat")


def fake_host(tmp_path: Path, ctx: Context, target_name: str) -> HostBuild:
    """A host build directory as make leaves it, a source tree with a tiny Lib/, the host's python as the
    build-python (it only compiles .pyc), and for WASI an llvm-strip stand-in."""
    src, _ = sources(tmp_path)
    (src.path / "Lib" / "json").mkdir(parents=True)
    (src.path / "Lib" / "os.py").write_text("sep = '/'\n")
    (src.path / "Lib" / "json" / "__init__.py").write_text("")
    (src.path / "Lib" / "idlelib").mkdir()
    (src.path / "Lib" / "idlelib" / "x.py").write_text("")
    (src.path / "LICENSE").write_text("PSF\n")
    build = tmp_path / "cache" / "hosts" / target_name
    lib_dir = build / "build" / "lib.wasi-3.13"
    lib_dir.mkdir(parents=True)
    tc = toolchain(tmp_path, target_name)
    (lib_dir / "_sysconfigdata__x.py").write_text(
        f"build_time_vars = {{'srcdir': '{src.path}', 'b': '{build}', 'cc': '{tc.path}/bin/clang', "
        "'LIBRARY': 'libpython3.13.a', 'MODLIBS': '-lm Modules/expat/libexpat.a', 'LIBS': '-ldl', 'SYSLIBS': '-lm', "
        "'PY_CORE_LDFLAGS': '-z stack-size=8388608 -Wl,--stack-first', 'LIBPL': '/usr/local/lib/python3.13/c', "
        "'prefix': '/usr/local'}\n")
    fake_kit_install(build, src.path)
    (build / "python.wasm").write_bytes(b"\0asm\1\0\0\0 with debug info")
    (build / "python.js").write_text("// loader\n")
    (lib_dir / "_testx.so").write_bytes(b"\0asm side module")
    strip = tc.path / "bin" / "llvm-strip"
    strip.parent.mkdir(parents=True)
    strip.write_text('#!/bin/sh\n# llvm-strip --strip-all -o OUT IN\nhead -c 8 "$4" > "$3"\n')
    strip.chmod(0o755)
    bp = BuildPython(Path(sys.executable), "bpkey", "gcc 12")
    return HostBuild(build, f"hostkey-{target_name}", src, bp, tc, [], {"args": ["--host=x"]})


@pytest.mark.parametrize("target_name", TARGET_NAMES)
def test_staging_lays_out_the_artifact_with_no_build_paths(tmp_path, target_name):
    ctx = make_ctx(tmp_path, target_name)
    ctx = dataclasses.replace(ctx, recipe=dataclasses.replace(ctx.recipe, stdlib_exclude=("idlelib",)))
    target = get_target(target_name)
    host = fake_host(tmp_path, ctx, target_name)
    staged = pipeline.stage(ctx, target, host)
    tree = staged.tree
    lib = tree / "lib" / "python3.13"
    assert (lib / "os.py").is_file() and (lib / "__pycache__").is_dir() and not (lib / "idlelib").exists()
    sysconfig = (lib / "_sysconfigdata__x.py").read_text()
    assert "/src/cpython" in sysconfig and "/build/cpython" in sysconfig and str(tmp_path) not in sysconfig
    assert (tree / "LICENSE").read_text() == "PSF\n"
    assert (tree / "python.sh").read_text() == target.launcher and os.access(tree / "python.sh", os.X_OK)
    assert staged.extra["launcher"] == "python.sh" and list(staged.extra)[0] == "launcher"
    if target_name == "wasi":
        assert (tree / "python.wasm").read_bytes() == b"\0asm\1\0\0\0"  # stripped
        assert (staged.debug / "python.wasm").read_bytes().endswith(b"with debug info")
        assert "/wasi-sdk/bin/clang" in sysconfig
        assert list(staged.extra) == ["launcher", "max_wasm_stack", "kit"]
        assert not (lib / "lib-dynload" / "_testx.so").exists()
    else:
        assert (tree / "python.js").read_text() == "// loader\n"
        assert (lib / "lib-dynload" / "_testx.so").is_file()
        assert list(staged.extra) == ["launcher", "python.js", "node", "libraries", "debuginfo", "kit"]
        assert staged.extra["debuginfo"] is None and staged.extra["node"]["stack_size_kb"] == 30000
    # The cross-build kit: headers, config directory and pkg-config files in the artifact, static libraries in
    # the -dev tree, no build paths, configure's prefix replaced by the artifact's.
    assert (tree / "include" / "python3.13" / "pyconfig.h").read_text() == "#define HAVE_X 1\n"
    config = lib / "config-3.13-wasm32-wasi"
    assert "srcdir= /src/cpython\nabs_builddir= /build/cpython" in (config / "Makefile").read_text()
    assert os.access(config / "makesetup", os.X_OK) and not (config / "libpython3.13.a").exists()
    dev = staged.dev
    assert (dev / "lib" / "libpython3.13.a").read_bytes() == b"!<arch>\nlibpython"
    assert (dev / "lib" / "libexpat.a").is_file() and (dev / config.relative_to(tree) / "python.o").is_file()
    link = dev / config.relative_to(tree) / "libpython3.13.a"
    assert link.is_symlink() and os.readlink(link) == "../../libpython3.13.a" and link.resolve().is_file()
    embed = (tree / "lib" / "pkgconfig" / "python-3.13-embed.pc").read_text()
    assert ("Libs: -L${libdir} -lpython3.13 -lexpat -lm -ldl -Wl,-z,stack-size=8388608 -Wl,--stack-first\n"
            in embed)
    assert "'LIBPL': '/lib/python3.13/c'" in sysconfig and "'prefix': '/'" in sysconfig
    script = (tree / "bin" / "python3.13-config").read_text()
    assert 'LIBS_EMBED="-lpython3.13 -lexpat -lm -ldl -Wl,-z,stack-size=8388608 -Wl,--stack-first"' in script
    assert str(tmp_path) not in script and os.access(tree / "bin" / "python3.13-config", os.X_OK)
    kit = staged.extra["kit"]
    assert kit["dev_static_libraries"] == ["lib/libexpat.a", "lib/libpython3.13.a"]
    assert kit["pkg_config"] == ["lib/pkgconfig/python-3.13-embed.pc", "lib/pkgconfig/python-3.13.pc"]
    # Staged once: a second call reads the cache entry.
    assert pipeline.stage(ctx, target, host).extra == staged.extra


def test_staging_refuses_a_build_path_that_survives(tmp_path):
    from wasmbuild.errors import BuildError

    ctx = make_ctx(tmp_path, "wasi")
    host = fake_host(tmp_path, ctx, "wasi")
    (host.source.path / "Lib" / "leak.txt").write_text(f"built in {host.path}\n")
    with pytest.raises(BuildError, match="leak.txt contains the build path"):
        pipeline.stage(ctx, get_target("wasi"), host)
    assert list((tmp_path / "cache" / "stage").iterdir()) == []  # the refused entry is gone


@pytest.mark.parametrize("target_name", TARGET_NAMES)
def test_the_record_is_assembled_from_the_step_results(tmp_path, target_name):
    ctx = make_ctx(tmp_path, target_name)
    host = fake_host(tmp_path, ctx, target_name)
    staged = pipeline.stage(ctx, get_target(target_name), host)
    record = package.assemble_record(ctx, get_target(target_name), staged, "debug.tar.gz", "dev.tar.gz").to_json()
    assert list(record) == list(FIELDS)
    assert record["format"] == RECORD_FORMAT
    assert record["python"] == {"implementation": "cpython", "version": ctx.recipe.version}
    assert record["target"] == {"name": target_name, "triple": ctx.target.triple}
    assert record["recipe"] == "cpython-3.13.yaml"
    source, toolchain_input = record["inputs"][:2]
    assert source["role"] == "cpython-source" and source["url"] == ctx.recipe.source.url  # not the fetched url
    assert source["sha256"] == ctx.recipe.source.sha256 and "fetch" not in source and "route" not in source
    assert toolchain_input["role"] == "toolchain" and toolchain_input["name"] == f"{target_name}.tar.gz"
    assert record["toolchain"] == split_provenance(host.toolchain.record())[0]
    assert record["build_python"]["cc"] == "gcc 12"
    assert record["patches"] == host.source.patches and record["configure"] == host.configure
    assert record["stdlib"]["pyc"] == "unchecked-hash"
    wasm = record["artifact"]["python.wasm"]
    assert wasm["size"] == (staged.tree / "python.wasm").stat().st_size and wasm["stripped"] is True
    assert record["artifact"]["launcher"] == "python.sh"


@pytest.mark.parametrize("target_name", TARGET_NAMES)
def test_the_same_inputs_fetched_by_another_route_give_the_same_record(tmp_path, target_name):
    ctx = make_ctx(tmp_path, target_name)
    host = fake_host(tmp_path, ctx, target_name)
    staged = pipeline.stage(ctx, get_target(target_name), host)
    first = package.assemble_record(ctx, get_target(target_name), staged, "debug.tar.gz", "dev.tar.gz")
    # The same bytes again: CPython from a Debian mirror, the toolchain archive from a mirror directory.
    mirror_src = dataclasses.replace(host.source, fetched=Fetched(host.source.fetched.path, "debian",
                                                                  "http://mirror.invalid/pool/Python.tgz"))
    tc = dataclasses.replace(host.toolchain, inputs=[{**host.toolchain.inputs[0],
                                                       "fetch": {"route": "mirror-dir", "url": "file:///m/x"}}])
    other_host = dataclasses.replace(host, source=mirror_src, toolchain=tc)
    second = package.assemble_record(ctx, get_target(target_name), dataclasses.replace(staged, host=other_host),
                                     "debug.tar.gz", "dev.tar.gz")
    assert json_text(first.to_json()) == json_text(second.to_json())
    assert "mirror" not in json_text(second.to_json()) and "fetch" not in json_text(second.to_json())
    # Where they came from is the provenance file's.
    prov = second.provenance("a.tar.gz")
    assert prov["artifact"] == "a.tar.gz"
    assert prov["inputs"][0] == {"name": ctx.recipe.source.name, "sha256": ctx.recipe.source.sha256,
                                 "route": "debian", "url": "http://mirror.invalid/pool/Python.tgz"}
    assert {"name": f"{target_name}.tar.gz", "sha256": "1" * 64, "route": "mirror-dir",
            "url": "file:///m/x"} in prov["inputs"]


def test_the_readme_documents_every_record_field():
    text = (ROOT / "README.md").read_text()
    section = text.split("### The build record", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.]+)` \| (.+) \|$", section, re.MULTILINE)
    assert [name for name, _ in rows] == list(FIELDS)
    assert dict(rows) == FIELDS


@pytest.mark.parametrize(("target_name", "provisioner", "override"), [
    ("wasi", "wasmbuild.toolchain.wasi_sdk.provision", "wasi_sdk_path"),
    ("emscripten", "wasmbuild.toolchain.emsdk.provision", "node"),
])
def test_each_target_provisions_its_manifests_toolchain_by_the_contexts_route(tmp_path, monkeypatch, capsys,
                                                                              target_name, provisioner, override):
    seen = []

    def provision(manifest, cache_root, sources, route, extra):
        seen.append((manifest.name, cache_root, route, extra))
        tc = toolchain(tmp_path, manifest.name)
        tc.components["node"] = "20.18.0"
        return tc

    monkeypatch.setattr(provisioner, provision)
    value = tmp_path / "sdk" if override == "wasi_sdk_path" else "/opt/node"
    ctx = dataclasses.replace(make_ctx(tmp_path, target_name), toolchain_route="debian", **{override: value})
    tc = get_target(target_name).provision_toolchain(ctx)
    assert seen == [(ctx.target.toolchain if target_name == "emscripten" else "wasi-sdk", ctx.cache, "debian", value)]
    err = capsys.readouterr().err
    assert f"via the release route{' (node 20.18.0)' if target_name == 'emscripten' else ''}: {tc.path}" in err


def test_wasi_libraries_are_built_with_the_sdk_for_the_target(tmp_path):
    ctx = make_ctx(tmp_path, "wasi")
    target = get_target("wasi")
    tc = toolchain(tmp_path, "wasi-sdk")
    env = target.library_env(ctx, tc, sources(tmp_path)[0].path)
    sysroot = tc.path / "share" / "wasi-sysroot"
    assert env["CC"] == f"{tc.path}/bin/clang --target=wasm32-wasip1 --sysroot={sysroot}"
    assert env["AR"] == f"{tc.path}/bin/llvm-ar" and env["RANLIB"] == f"{tc.path}/bin/ranlib"
    assert env["HOST"] == "wasm32-wasip1" and env["BUILD"] == BUILD_TRIPLE and env["CONFIGURE_WRAPPER"] == ""
    assert env["CFLAGS"] == f"-O2 -ffile-prefix-map={tc.path}=/wasi-sdk"
    assert "SOURCE_DATE_EPOCH" not in env  # shared by every CPython version
    assert set(ctx.target.libraries) == {"zlib", "bzip2", "xz", "sqlite"}
    # The same environment for every CPython version's recipe.
    other = dataclasses.replace(ctx, recipe=load_recipe(ROOT / "recipes" / "cpython-3.11.yaml", ROOT / "patches"))
    assert target.library_env(other, tc, sources(tmp_path)[0].path) == env


def test_wasi_configure_gets_the_libraries_and_records_them_without_machine_paths(tmp_path):
    ctx = make_ctx(tmp_path, "wasi")
    target = get_target("wasi")
    tc = toolchain(tmp_path, "wasi-sdk")
    src, bp = sources(tmp_path)
    build = tmp_path / "cache" / "hosts" / "h"
    zlib = library(tmp_path)
    s = target.host_settings(ctx, src, build, tc, bp, [zlib])
    assert s.env["ZLIB_CFLAGS"] == f"-I{zlib.prefix}/include" and s.env["ZLIB_LIBS"] == f"-L{zlib.prefix}/lib -lz"
    assert f"-ffile-prefix-map={zlib.prefix}=/opt/zlib" in s.env["CFLAGS"].split()
    assert s.record["libraries"] == {"ZLIB_CFLAGS": "-I/opt/zlib/include", "ZLIB_LIBS": "-L/opt/zlib/lib -lz"}
    assert list(s.record) == ["args", "config_site", "config_cache", "cflags", "ldflags", "libraries", "compilers"]
    no_machine_paths(s.record, tmp_path)
    assert target.host_key_extra([zlib]) == {"libraries": [{"v": 1}]} and target.host_key_extra([]) == {}


def test_a_target_without_libraries_refuses_a_recipe_that_names_some(tmp_path, monkeypatch):
    from wasmbuild.errors import RecipeError

    target = get_target("wasi")
    monkeypatch.setattr(target, "library_env", lambda ctx, tc, src: None)  # as the base class says
    with pytest.raises(RecipeError, match="targets.wasi.libraries: the wasi target builds no C libraries"):
        target.build_libraries(make_ctx(tmp_path, "wasi"), toolchain(tmp_path, "t"), sources(tmp_path)[0])
    assert target.build_libraries(make_ctx(tmp_path, "wasi", libraries=()), toolchain(tmp_path, "t"),
                                  sources(tmp_path)[0]) == []


# --- Emscripten, web variant ----------------------------------------------------------------------------------

# CPython 3.13's link of python.js for the node target, as `make -n -W Programs/python.o python.js` prints it in the
# host build's environment (its LDFLAGS twice: configure's and make's; the object list cut short).
NODE_LINK = ("/emsdk/emscripten/emcc -sSTACK_SIZE=16777216 -sEXPORTED_RUNTIME_METHODS=ENV "
             "--pre-js=/cache/hosts/h/wasmbuild-pre.js -sSTACK_SIZE=16777216 -sEXPORTED_RUNTIME_METHODS=ENV "
             "--pre-js=/cache/hosts/h/wasmbuild-pre.js  -sALLOW_MEMORY_GROWTH -sTOTAL_MEMORY=20971520 -sWASM_BIGINT "
             "-sFORCE_FILESYSTEM -lidbfs.js -lnodefs.js -lproxyfs.js -lworkerfs.js -sALLOW_MEMORY_GROWTH -sNODERAWFS  "
             "-sMAIN_MODULE -sEXIT_RUNTIME -O2 -g0 -o python.js Programs/python.o Modules/getbuildinfo.o "
             "Parser/token.o Modules/_decimal/libmpdec/libmpdec.a Modules/expat/libexpat.a "
             "-L/cache/libs/zlib/prefix/lib -lz -ldl")


def web() -> object:
    from wasmbuild.targets.emscripten_web import EmscriptenWeb

    target = get_target("emscripten", "web")
    assert isinstance(target, EmscriptenWeb)
    return target


def test_the_emscripten_target_has_a_node_and_a_web_variant_and_wasi_none():
    from wasmbuild.errors import UsageError
    from wasmbuild.names import TARGET_VARIANTS, VARIANT_NAMES
    from wasmbuild.targets import VARIANTS

    assert {t: tuple(v) for t, v in VARIANTS.items()} == TARGET_VARIANTS == {"emscripten": ("node", "web")}
    assert VARIANT_NAMES == ("node", "web")
    assert all(t.name == name and t.variant == v for name, vs in VARIANTS.items() for v, t in vs.items())
    assert get_target("emscripten", "node") is get_target("emscripten") is TARGETS["emscripten"]
    target = web()
    assert (target.name, target.variant, target.name_suffix, WebRuntime.sys_platform) == ("emscripten", "web", "-web",
                                                                                         "emscripten")
    assert get_target("wasi").variant is None and TARGETS["emscripten"].name_suffix == ""
    with pytest.raises(UsageError, match=r"(?s)--variant web: the wasi target has no variants.*emscripten \(node, web"):
        get_target("wasi", "web")
    with pytest.raises(UsageError, match="(?s)--variant node: the wasi target has no variants"):
        get_target("wasi", "node")
    with pytest.raises(UsageError, match="(?s)the emscripten target has no such variant.*node, web"):
        get_target("emscripten", "browser")


def test_the_web_variant_is_linked_from_the_node_builds_objects(tmp_path):
    # The same host build: its key, files, configure settings and outputs are the node variant's.
    node, target = get_target("emscripten"), web()
    ctx = make_ctx(tmp_path, "emscripten", **RECIPE_OPTIONS)
    tc = toolchain(tmp_path, "emscripten")
    src, bp = sources(tmp_path)
    zlib = library(tmp_path)
    build = tmp_path / "cache" / "hosts" / "h"
    assert target.host_key_extra([zlib]) == node.host_key_extra([zlib])
    assert target.host_files() == node.host_files() and target.host_outputs == node.host_outputs
    assert target.host_steps_version == node.host_steps_version and target.toolchain_key(tc) == node.toolchain_key(tc)
    assert target.host_settings(ctx, src, build, tc, bp, [zlib]) == node.host_settings(ctx, src, build, tc, bp, [zlib])


def test_the_web_link_flags_replace_the_node_only_ones(tmp_path):
    import shlex

    from wasmbuild.targets.emscripten_web import web_link_argv

    out, pre = tmp_path / "link" / "python.mjs", [tmp_path / "w" / "wasmbuild-web-pre.js", tmp_path / "w" / "p.js"]
    argv = web_link_argv(shlex.split(NODE_LINK), out, pre)
    assert argv == [
        "/emsdk/emscripten/emcc", "-sSTACK_SIZE=16777216", "-sSTACK_SIZE=16777216", "-sALLOW_MEMORY_GROWTH",
        "-sTOTAL_MEMORY=20971520",
        "-sWASM_BIGINT", "-sFORCE_FILESYSTEM", "-lidbfs.js", "-lnodefs.js", "-lproxyfs.js", "-lworkerfs.js",
        "-sALLOW_MEMORY_GROWTH", "-sMAIN_MODULE", "-O2", "-g0", "-o", str(out), "Programs/python.o",
        "Modules/getbuildinfo.o", "Parser/token.o", "Modules/_decimal/libmpdec/libmpdec.a",
        "Modules/expat/libexpat.a", "-L/cache/libs/zlib/prefix/lib", "-lz", "-ldl",
        "-sMODULARIZE=1", "-sEXPORT_ES6=1", "-sEXPORT_NAME=createPython", "-sENVIRONMENT=web,worker,node",
        "-sALLOW_MEMORY_GROWTH=1", "-sINVOKE_RUN=0", "-sEXPORTED_RUNTIME_METHODS=FS,callMain,ccall,cwrap,ENV",
        "-sEXPORTED_FUNCTIONS=_main,_Py_Initialize,_PyRun_SimpleString,_Py_FinalizeEx,_malloc,_free",
        "-sDYNAMIC_EXECUTION=0", f"--pre-js={pre[0]}", f"--pre-js={pre[1]}",
    ]
    # The same stack size as the node build (the recipe's), the node-only flags gone.
    assert "-sSTACK_SIZE=16777216" in argv and not {"-sNODERAWFS", "-sEXIT_RUNTIME"} & set(argv)
    assert not [a for a in argv if a.endswith("wasmbuild-pre.js") or a == "python.js"]


def test_the_web_link_refuses_a_link_that_is_not_the_node_one(tmp_path):
    import shlex

    from wasmbuild.errors import BuildError
    from wasmbuild.targets.emscripten_web import web_link_argv

    with pytest.raises(BuildError, match="(?s)has no -sNODERAWFS.*--with-emscripten-target=node"):
        web_link_argv(shlex.split(NODE_LINK.replace(" -sNODERAWFS", "")), tmp_path / "python.mjs", [])
    with pytest.raises(BuildError, match="has no '-o python.js'"):
        web_link_argv(shlex.split(NODE_LINK.replace("-o python.js", "-o python.html")), tmp_path / "python.mjs", [])


def test_the_node_link_is_read_from_cpythons_makefile(tmp_path, monkeypatch):
    import subprocess

    from wasmbuild.errors import BuildError
    from wasmbuild.targets import emscripten_web

    ctx = make_ctx(tmp_path, "emscripten")
    host = fake_host(tmp_path, ctx, "emscripten")
    seen = []

    def capture(argv, *, cwd=None, env=None, **kwargs):
        seen.append((list(argv), cwd, env["LIBFFI_LIBS"]))
        return subprocess.CompletedProcess(argv, 0, f"make: 'x' is up to date.\n{NODE_LINK}\n", "")

    monkeypatch.setattr(emscripten_web, "capture", capture)
    logf = tmp_path / "link.log"
    # Run in the host build's environment: 3.11's Setup.local line takes -lffi from $(LIBFFI_LIBS).
    env = {"LIBFFI_LIBS": "-L/x/lib -lffi"}
    argv = emscripten_web.node_link_argv(host, ("MODULE_BINASCII_LDFLAGS=",), env, logf)
    assert seen == [(["make", "-n", "-o", "Makefile", "-o", "Makefile.pre", "-W", "Programs/python.o", "python.js",
                      "MODULE_BINASCII_LDFLAGS="], host.path, "-L/x/lib -lffi")]
    assert argv[0] == "/emsdk/emscripten/emcc" and "-sNODERAWFS" in argv and NODE_LINK in logf.read_text()
    monkeypatch.setattr(emscripten_web, "capture",
                        lambda argv, **kw: subprocess.CompletedProcess(argv, 2, "", "make: *** No rule\n"))
    with pytest.raises(BuildError, match="cannot read CPython's link of python.js from its Makefile"):
        emscripten_web.node_link_argv(host, (), env, logf)


def test_the_web_file_package_leaves_out_what_a_browser_cannot_use():
    from wasmbuild.targets.emscripten_web import TEST_MODULES

    recipe = load_recipe(ROOT / "recipes" / "cpython-3.13.yaml", ROOT / "patches")
    exclude = web().stdlib_exclude(recipe)
    assert exclude[:len(recipe.stdlib_exclude)] == recipe.stdlib_exclude
    assert {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "venv", "pydoc_data",
            "__phello__", "ctypes/test", "unittest/test", "distutils/tests"} <= set(exclude)
    assert len(set(exclude)) == len(exclude)
    # The side modules a --enable-wasm-dynamic-linking build makes are CPython's test modules (3.13's list).
    for name in ("_ctypes_test", "_testexternalinspection", "_testimportmultiple", "_testmultiphase",
                 "_testsinglephase", "xxlimited", "xxlimited_35", "_testcapi", "_xxtestfuzz"):
        assert TEST_MODULES.match(f"{name}.cpython-313-wasm32-emscripten.so")
    for name in ("_ctypes", "_sqlite3", "zlib", "_decimal"):
        assert not TEST_MODULES.match(f"{name}.cpython-313-wasm32-emscripten.so")


@pytest.mark.parametrize(("form", "files"), [
    ("smaller", ["big.pyc", "pkg/__init__.py", "small.py"]),
    ("pyc", ["big.pyc", "pkg/__init__.pyc", "small.pyc"]),
    ("py", ["big.py", "pkg/__init__.py", "small.py"]),
    ("both", ["big.py", "pkg/__init__.py", "pkg/__pycache__/__init__.cpython-313.pyc", "small.py",
              "__pycache__/big.cpython-313.pyc", "__pycache__/small.cpython-313.pyc"]),
])
def test_the_standard_library_form_keeps_a_pyc_only_where_asked(tmp_path, form, files):
    from wasmbuild.targets.emscripten_web import prune_stdlib

    lib = tmp_path / "python3.13"
    (lib / "__pycache__").mkdir(parents=True)
    (lib / "pkg" / "__pycache__").mkdir(parents=True)
    (lib / "big.py").write_text("# a long comment\n" * 100 + "x = 1\n")  # its .pyc is smaller
    (lib / "__pycache__" / "big.cpython-313.pyc").write_bytes(b"pyc" * 10)
    (lib / "small.py").write_text("x = 1\n")  # its .pyc is bigger
    (lib / "__pycache__" / "small.cpython-313.pyc").write_bytes(b"pyc" * 10)
    (lib / "pkg" / "__init__.py").write_text("")
    (lib / "pkg" / "__pycache__" / "__init__.cpython-313.pyc").write_bytes(b"pyc")
    prune_stdlib(lib, form)
    found = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file())
    assert found == sorted(files)
    if form != "both":
        assert not list(lib.rglob("__pycache__"))
    with pytest.raises(ValueError, match="unknown standard library form"):
        prune_stdlib(lib, "zip")


def fake_web_build(tmp_path: Path, monkeypatch) -> tuple[Context, HostBuild, list]:
    """A fake node host build, and the web link and file_packager replaced by stand-ins writing their outputs."""
    from wasmbuild.targets import emscripten_web

    ctx = make_ctx(tmp_path, "emscripten")
    host = fake_host(tmp_path, ctx, "emscripten")
    calls: list = []

    def package_stdlib(tc, libdir, mount, out, loader, log_file):
        calls.append(("package", sorted(p.relative_to(libdir).as_posix() for p in libdir.rglob("*") if p.is_file()),
                      mount))
        (out / "python.data").write_bytes(b"data")
        loader.write_text("// loader\n")

    def link(ctx, host, env, pre_js):
        calls.append(("link", [p.name for p in pre_js], [p.read_text() for p in pre_js]))
        assert env["EM_CONFIG"] and env["LDFLAGS"]  # the host build's environment
        entry = tmp_path / "cache" / "links" / "web"
        entry.mkdir(parents=True, exist_ok=True)
        (entry / "python.mjs").write_text("export default function createPython() {}\n")
        (entry / "python.wasm").write_bytes(b"\0asm\1\0\0\0 web")
        return entry

    monkeypatch.setattr(emscripten_web, "package_stdlib", package_stdlib)
    monkeypatch.setattr(emscripten_web, "link", link)
    return ctx, host, calls


def test_web_staging_lays_out_module_data_and_licence_only(tmp_path, monkeypatch):
    from wasmbuild.targets.emscripten_web import WEB_PRE_JS

    ctx, host, calls = fake_web_build(tmp_path, monkeypatch)
    (host.source.path / "Lib" / "test").mkdir()
    (host.source.path / "Lib" / "test" / "test_x.py").write_text("")
    (host.source.path / "Lib" / "__phello__").mkdir()
    (host.source.path / "Lib" / "__phello__" / "__init__.py").write_text("")
    staged = pipeline.stage(ctx, web(), host)
    assert staged.name == "cpython-3.13.15-wasm32-emscripten-web"
    assert sorted(p.name for p in staged.tree.iterdir()) == ["LICENSE", "python.data", "python.mjs", "python.wasm"]
    assert not staged.dev.exists() and not staged.debug.exists()
    (package, packaged, mount), (link, pre_names, pre_texts) = calls
    assert package == "package" and mount == "/lib/python3.13"
    # The standard library minus what a browser cannot use, the JS API's Python half, no test side module.
    assert "_wasmbuild_web.py" in packaged and "lib-dynload/.empty" in packaged and "os.py" in packaged
    assert "_sysconfigdata__x.py" in packaged and "json/__init__.py" in packaged
    assert not [p for p in packaged if p.startswith(("test/", "__phello__/", "idlelib/")) or p.endswith(".so")]
    assert link == "link" and pre_names == ["wasmbuild-web-pre.js", "python.data.js"]
    assert pre_texts == [WEB_PRE_JS, "// loader\n"]
    extra = staged.extra
    assert list(extra) == ["python.mjs", "python.data", "libraries", "debuginfo"]
    assert extra["python.data"]["mount"] == "/lib/python3.13" and extra["python.data"]["form"] == "smaller"
    assert extra["python.mjs"]["export"] == "createPython" and extra["debuginfo"] is None
    # Staged once: a second call reads the cache entry; another JS API module stages again.
    assert pipeline.stage(ctx, web(), host).entry == staged.entry and len(calls) == 2
    api = tmp_path / "root" / "web" / "_wasmbuild_web.py"
    api.parent.mkdir(parents=True)
    api.write_text("# another JS API\n")
    for name in ("recipes", "toolchains", "patches"):
        (tmp_path / "root" / name).symlink_to(ROOT / name)
    assert pipeline.stage(dataclasses.replace(ctx, root=tmp_path / "root"), web(), host).entry != staged.entry


def test_the_web_variant_needs_the_js_apis_python_half(tmp_path, monkeypatch):
    from wasmbuild.errors import BuildError

    for name in ("recipes", "toolchains", "patches"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.setattr("wasmbuild.toolchain.emsdk.provision", lambda *a: pytest.fail("provisioned"))
    ctx = dataclasses.replace(make_ctx(tmp_path, "emscripten"), root=tmp_path)
    # Said at the first step, before anything is provisioned or built.
    with pytest.raises(BuildError, match="(?s)web/_wasmbuild_web.py is missing.*restore web/_wasmbuild_web.py"):
        web().provision_toolchain(ctx)


def test_the_web_record_names_the_variant_its_link_and_its_file_package(tmp_path, monkeypatch):
    ctx, host, _ = fake_web_build(tmp_path, monkeypatch)
    staged = pipeline.stage(ctx, web(), host)
    record = package.assemble_record(ctx, web(), staged, None, None).to_json()
    assert list(record) == list(FIELDS)
    assert record["target"] == {"name": "emscripten", "triple": "wasm32-emscripten", "variant": "web"}
    link = record["configure"]["web_link"]
    assert link["removed"] == ["-sNODERAWFS", "-sEXIT_RUNTIME", "-sENVIRONMENT=node", "-sEXPORTED_RUNTIME_METHODS=ENV"]
    assert "-sEXPORT_ES6=1" in link["added"] and "-sINVOKE_RUN=0" in link["added"]
    assert {k: v for k, v in record["configure"].items() if k != "web_link"} == host.configure
    assert record["stdlib"]["form"] == "smaller" and "pydoc_data" in record["stdlib"]["exclude"]
    artifact = record["artifact"]
    assert artifact["dev"] is None and artifact["debuginfo"] is None and "launcher" not in artifact
    assert artifact["python.data"]["sha256"] == cache_sha256(staged.tree / "python.data")
    no_machine_paths(record, tmp_path)
    # The node variant's record has no variant.
    assert get_target("emscripten").record_target(ctx.target) == {"name": "emscripten", "triple": "wasm32-emscripten"}


def cache_sha256(path: Path) -> str:
    from wasmbuild.cache import sha256_file

    return sha256_file(path)


def test_the_web_artifact_is_packaged_without_dev_or_debuginfo_archives(tmp_path, monkeypatch):
    import tarfile

    ctx, host, _ = fake_web_build(tmp_path, monkeypatch)
    artifact = package.package(ctx, web(), pipeline.stage(ctx, web(), host))
    name = "cpython-3.13.15-wasm32-emscripten-web"
    assert artifact.archive == ctx.dist / f"{name}.tar.gz"
    assert sorted(p.name for p in ctx.dist.iterdir()) == ["SHA256SUMS", f"{name}.BUILD.json",
                                                          f"{name}.provenance.json", f"{name}.tar.gz",
                                                          "wasmbuild-cpython-3.13.15-wasmbuild.3.tgz"]
    with tarfile.open(artifact.archive) as tar:
        assert tar.getnames()[:2] == [name, f"{name}/BUILD.json"]
    assert f"  {name}.tar.gz" in (ctx.dist / "SHA256SUMS").read_text()
    # and its npm package (wasmbuild.npm; tests/unit/test_npm.py), listed in SHA256SUMS too
    assert "  wasmbuild-cpython-3.13.15-wasmbuild.3.tgz\n" in (ctx.dist / "SHA256SUMS").read_text()


def test_a_web_artifact_is_told_by_its_module_and_is_not_run_as_a_command(tmp_path):
    from wasmbuild.artifact import _check_layout, run_artifact
    from wasmbuild.errors import ArchiveError, UsageError

    root = tmp_path / "cpython-3.13.15-wasm32-emscripten-web"
    root.mkdir()
    for name in ("python.mjs", "python.wasm"):
        (root / name).write_bytes(b"\0asm")
    with pytest.raises(ArchiveError, match="has python.mjs but no python.data"):
        _check_layout(root, "art")
    (root / "python.data").write_bytes(b"")
    _check_layout(root, "art")  # no lib/: the standard library is in python.data
    runtime = artifact_runtime(root)
    assert isinstance(runtime, WebRuntime) and not isinstance(runtime, NodeRuntime)
    assert (runtime.target, runtime.variant) == (web().name, web().variant)
    for call in (lambda: run_artifact(root, ["-c", "1"], tmp_path / "cache"),
                 lambda: runtime.worker_command(tmp_path / "cache")):
        with pytest.raises(UsageError, match="(?s)is a web artifact: it runs in a browser.*without --variant web"):
            call()


def test_linking_against_a_web_artifact_is_refused(tmp_path, monkeypatch):
    from wasmbuild import link
    from wasmbuild.errors import UsageError
    from wasmbuild.steps import BuildOptions

    root = tmp_path / "cpython-3.13.15-wasm32-emscripten-web"
    root.mkdir()
    for name in ("python.mjs", "python.wasm", "python.data"):
        (root / name).write_bytes(b"")
    with pytest.raises(UsageError, match="(?s)linking needs an artifact with the cross-build kit.*without --variant"):
        monkeypatch.setattr(link, "provision_for_record", lambda *a: pytest.fail("provisioned"))
        options = BuildOptions(root=tmp_path, cache=tmp_path / "cache", dist=tmp_path / "dist", sources=Sources())
        link.prepare(root, options=options, dev=None, needs_dev=lambda target: False, what="linking")


def test_verify_rebuilds_a_web_artifact_as_the_web_variant(tmp_path):
    from wasmbuild.release.verify import rebuild_argv

    record = {"target": {"name": "emscripten", "triple": "wasm32-emscripten", "variant": "web"},
              "python": {"version": "3.13.15"}, "toolchain": {"route": "debian"}}
    argv = rebuild_argv(record, tmp_path / "c", tmp_path / "d", [])
    assert argv[argv.index("--target") + 1] == "emscripten" and argv[argv.index("--variant") + 1] == "web"
    del record["target"]["variant"]
    assert "--variant" not in rebuild_argv(record, tmp_path / "c", tmp_path / "d", [])
