"""The cross-build kit (kit.py) and `wasmbuild link`'s checks (link.py): no compiler, no network."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from wasmbuild import cli, kit, link
from wasmbuild.errors import ArchiveError, BuildError, UsageError

WASI_VARS = {
    "LIBRARY": "libpython3.13.a",
    "MODLIBS": "-lm -lm Modules/_decimal/libmpdec/libmpdec.a -L/cache/libs/zlib/prefix/lib -lz "
               "-L/cache/libs/zlib/prefix/lib -lz  Modules/_hacl/libHacl_Hash_SHA2.a -lm Modules/expat/libexpat.a "
               "-L/cache/libs/sqlite/prefix/lib -lsqlite3",
    "LIBS": "-ldl  -lwasi-emulated-signal -lwasi-emulated-getpid",
    "SYSLIBS": "-lm",
    "PY_CORE_LDFLAGS": "-z stack-size=8388608 -Wl,--stack-first -Wl,--initial-memory=20971520 -Wl,--no-entry-x",
    "LINKFORSHARED": "",
}


def test_the_embed_link_line_names_every_library_once_in_order_and_the_stack_flags():
    plan = kit.link_plan(WASI_VARS)
    assert plan.archives == ("Modules/_decimal/libmpdec/libmpdec.a", "Modules/_hacl/libHacl_Hash_SHA2.a",
                             "Modules/expat/libexpat.a")
    assert plan.libs == ("-lm", "-lz", "-lsqlite3", "-ldl", "-lwasi-emulated-signal", "-lwasi-emulated-getpid")
    # `-z stack-size=N` is one flag (pkg-config could split or merge two words); unknown flags are not passed on.
    assert plan.flags == ("-Wl,-z,stack-size=8388608", "-Wl,--stack-first", "-Wl,--initial-memory=20971520")
    assert plan.libs_line() == (
        "-L${libdir} -lpython3.13 -lmpdec -lHacl_Hash_SHA2 -lexpat -lm -lz -lsqlite3 -ldl -lwasi-emulated-signal "
        "-lwasi-emulated-getpid -Wl,-z,stack-size=8388608 -Wl,--stack-first -Wl,--initial-memory=20971520")


def test_emscripten_flags_kept_for_an_embedding_program():
    plan = kit.link_plan({"LIBRARY": "libpython3.13.a", "MODLIBS": "", "LIBS": "", "SYSLIBS": "",
                          "PY_CORE_LDFLAGS": "-sSTACK_SIZE=16777216 -sALLOW_MEMORY_GROWTH --pre-js=/build/x.js",
                          "LINKFORSHARED": "-sMAIN_MODULE=1 -sWASM_BIGINT -sINITIAL_MEMORY=20971520"})
    assert plan.flags == ("-sSTACK_SIZE=16777216", "-sALLOW_MEMORY_GROWTH", "-sMAIN_MODULE=1", "-sWASM_BIGINT",
                          "-sINITIAL_MEMORY=20971520")


def test_a_build_without_a_static_libpython_cannot_make_a_kit():
    with pytest.raises(BuildError, match="no static libpython"):
        kit.link_plan({"LIBRARY": "libpython3.13.so"})


def test_pc_files_are_relocatable_and_read_back_like_pkg_config(tmp_path):
    plan = kit.link_plan(WASI_VARS)
    files = kit.pc_files(plan, version="3.13.15", short="3.13", triple="wasm32-wasip1")
    assert sorted(files) == ["python-3.13-embed.pc", "python-3.13.pc"]
    pc = tmp_path / "art" / "lib" / "pkgconfig"
    pc.mkdir(parents=True)
    for name, text in files.items():
        (pc / name).write_text(text)
    embed = kit.read_pc(pc / "python-3.13-embed.pc")
    assert embed["Cflags"] == f"-I{pc}/../../include/python3.13"
    assert embed["Libs"].startswith(f"-L{pc}/../../lib -lpython3.13 -lmpdec ")
    ext = kit.read_pc(pc / "python-3.13.pc")
    assert ext["Libs"] == "" and ext["Cflags"] == embed["Cflags"] and ext["Version"] == "3.13"


def test_read_pc_refuses_a_line_that_is_neither_variable_nor_field(tmp_path):
    bad = tmp_path / "bad.pc"
    bad.write_text("prefix=/x\nthis is not pkg-config\n")
    with pytest.raises(ArchiveError, match="not a pkg-config line"):
        kit.read_pc(bad)


def test_python_config_gets_the_whole_static_link_line():
    script = '#!/bin/sh\nLIBS="-ldl"\nLIBS_EMBED="-lpython${VERSION}${ABIFLAGS} -ldl $SYSLIBS"\n'
    out = kit.embed_libs_for_config(script, kit.link_plan(WASI_VARS))
    assert 'LIBS_EMBED="-lpython3.13 -lmpdec -lHacl_Hash_SHA2 -lexpat -lm -lz -lsqlite3 ' in out
    assert 'LIBS="-ldl"' in out
    with pytest.raises(BuildError, match="no LIBS_EMBED line"):
        kit.embed_libs_for_config("#!/bin/sh\n", kit.link_plan(WASI_VARS))


def test_sysconfig_data_is_read_without_running_it(tmp_path):
    good = tmp_path / "_sysconfigdata__wasi_wasm32-wasi.py"
    good.write_text("# generated\nbuild_time_vars = {'A': 1, 'EXT_SUFFIX': '.so'}\n")
    assert kit.read_sysconfig_vars(good) == {"A": 1, "EXT_SUFFIX": ".so"}
    assert kit.sysconfig_module(tmp_path) == good
    evil = tmp_path / "evil.py"
    evil.write_text("build_time_vars = __import__('os').system('false')\n")
    with pytest.raises(ValueError):
        kit.read_sysconfig_vars(evil)
    broken = tmp_path / "broken.py"
    broken.write_text("build_time_vars = {\n")
    with pytest.raises(ArchiveError, match="not a readable sysconfig data module"):
        kit.read_sysconfig_vars(broken)
    (tmp_path / "_sysconfigdata__other.py").write_text("build_time_vars = {}\n")
    with pytest.raises(ArchiveError, match="expected one _sysconfigdata"):
        kit.sysconfig_module(tmp_path)


def test_configure_prefix_becomes_the_artifact_root_in_sysconfig_data():
    text = "{'prefix': '/usr/local', 'LIBDIR': '/usr/local/lib', 'X': '/usr/localx', \"p\": \"/usr/local\"}"
    assert kit.artifact_prefix_sysconfig(text) == "{'prefix': '/', 'LIBDIR': '/lib', 'X': '/usr/localx', \"p\": \"/\"}"


def test_missing_kit_names_what_is_absent(tmp_path):
    (tmp_path / "include" / "python3.13").mkdir(parents=True)
    (tmp_path / "include" / "python3.13" / "Python.h").write_text("")
    assert kit.missing_kit(tmp_path, "3.13", dev=False) == [
        "include/python3.13/pyconfig.h", "lib/pkgconfig/python-3.13.pc", "lib/pkgconfig/python-3.13-embed.pc"]
    assert kit.missing_kit(tmp_path, "3.13", dev=True)[-1] == "lib/libpython3.13.a"


# --- wasmbuild link: the checks made before anything is compiled ------------------------------------------------


def test_module_specs(tmp_path):
    src = tmp_path / "fast_math.c"
    src.write_text("")
    helper = tmp_path / "helper.c"
    helper.write_text("")
    assert link.parse_module(str(src)) == kit.Module("fast_math", (src,))
    assert link.parse_module(f"fm={src},{helper}") == kit.Module("fm", (src, helper))
    with pytest.raises(UsageError, match="not a valid module name"):
        link.parse_module(f"my-mod={src}")
    with pytest.raises(UsageError, match="source file not found"):
        link.parse_module(str(tmp_path / "nope.c"))
    cpp = tmp_path / "m.cpp"
    cpp.write_text("")
    with pytest.raises(UsageError, match="not a C source"):
        link.parse_module(str(cpp))
    with pytest.raises(UsageError, match="no source files"):
        link.parse_module("m=")
    with pytest.raises(UsageError, match="more than once: fast_math"):
        link.check_modules([link.parse_module(str(src)), link.parse_module(str(src))])


def test_the_companion_dev_archive_is_found_beside_the_artifact(tmp_path):
    art = tmp_path / "cpython-3.13.15-wasm32-wasip1.tar.gz"
    art.write_bytes(b"")
    assert link.companion_dev(art) == tmp_path / "cpython-3.13.15-wasm32-wasip1-dev.tar.gz"
    assert link.companion_dev(tmp_path) is None


def _tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_dev_archive_of_another_build_is_refused(tmp_path):
    record = {"python": {"version": "3.13.15"}, "artifact": {"python.wasm": {"sha256": "a"}}}
    dev = tmp_path / "x-dev.tar.gz"
    _tar(dev, {"top/BUILD.json": json.dumps({**record, "artifact": {"python.wasm": {"sha256": "b"}}}).encode(),
               "top/lib/libpython3.13.a": b"!<arch>\n"})
    tree = tmp_path / "tree"
    tree.mkdir()
    with pytest.raises(UsageError, match="another build"):
        link.merge_dev(dev, tree, record)
    assert list(tree.iterdir()) == []
    _tar(dev, {"top/BUILD.json": json.dumps(record).encode(), "top/lib/libpython3.13.a": b"!<arch>\n"})
    link.merge_dev(dev, tree, record)
    assert (tree / "lib" / "libpython3.13.a").read_bytes() == b"!<arch>\n" and not (tree / "BUILD.json").exists()
    dev.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ArchiveError, match="x-dev.tar.gz"):
        link.merge_dev(dev, tree, record)


def fake_artifact(tmp_path: Path, *, with_kit: bool) -> Path:
    root = tmp_path / "art"
    (root / "lib" / "python3.13").mkdir(parents=True)
    (root / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "BUILD.json").write_text(json.dumps({
        "python": {"version": "3.13.15"}, "target": {"name": "wasi", "triple": "wasm32-wasip1"},
        "toolchain": {"name": "wasi-sdk", "version": "25"}, "artifact": {"python.wasm": {"sha256": "0"}}}))
    if with_kit:
        (root / "include" / "python3.13").mkdir(parents=True)
        for name in ("Python.h", "pyconfig.h"):
            (root / "include" / "python3.13" / name).write_text("")
        (root / "lib" / "pkgconfig").mkdir()
        for name in ("python-3.13.pc", "python-3.13-embed.pc"):
            (root / "lib" / "pkgconfig" / name).write_text("")
    return root


def run_link(capsys, tmp_path: Path, *argv: str) -> tuple[int, str]:
    code = cli.main(["link", *argv, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


def test_link_an_artifact_without_the_kit_says_what_is_missing(capsys, tmp_path):
    art = fake_artifact(tmp_path, with_kit=False)
    src = tmp_path / "m.c"
    src.write_text("")
    code, err = run_link(capsys, tmp_path, str(art), "--module", str(src), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "has no cross-build files: missing include/python3.13/Python.h" in err and "Traceback" not in err
    assert "rebuild the artifact with this wasmbuild" in err
    assert not (tmp_path / "out").exists()


def test_link_for_wasi_without_the_dev_archive_says_where_it_looked(capsys, tmp_path, monkeypatch):
    art = fake_artifact(tmp_path, with_kit=True)
    src = tmp_path / "m.c"
    src.write_text("")

    class FakeTarget:
        name, link_needs_dev = "wasi", True

    class FakeToolchain:
        name, version = "wasi-sdk", "25"

    monkeypatch.setattr(link, "provision_for_record", lambda record, short, options: (FakeTarget(), FakeToolchain()))
    code, err = run_link(capsys, tmp_path, str(art), "--module", str(src), "-o", str(tmp_path / "out"))
    assert code == 2 and "needs the artifact's static libraries (libpython3.13.a ...)" in err
    assert "--dev" in err and not (tmp_path / "out").exists()
    code, err = run_link(capsys, tmp_path, str(art), "--module", str(src), "-o", str(tmp_path / "out"),
                         "--dev", str(tmp_path / "missing-dev.tar.gz"))
    assert code == 2 and "missing-dev.tar.gz" in err


def test_link_refuses_an_output_directory_that_holds_something_else(capsys, tmp_path):
    art = fake_artifact(tmp_path, with_kit=True)
    src = tmp_path / "m.c"
    src.write_text("")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    code, err = run_link(capsys, tmp_path, str(art), "--module", str(src), "-o", str(out))
    assert code == 2 and "holds no artifact" in err
    assert (out / "thesis.tex").read_text() == "keep me"


def test_link_without_modules_is_a_usage_error(capsys, tmp_path):
    assert cli.main(["link", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "the following arguments are required: --module" in capsys.readouterr().err


# --- issue 20: modules linked earlier, names the artifact already has, outputs, paths with spaces -----------------


CONFIG_C = '''struct _inittab _PyImport_Inittab[] = {
    {"_json", PyInit__json},
    {"math", PyInit_math},
    {"marshal", PyMarshal_Init},
    {"builtins", NULL},
    {"sys", NULL},
    {0, 0}
};
'''


class FakeTarget:
    def __init__(self, name: str, needs_dev: bool):
        self.name, self.link_needs_dev = name, needs_dev
        self.linked: list[str] = []

    def link_modules(self, tc, tree, modules, work, log_file, short, triple):
        self.linked = [m.name for m in modules]
        if self.link_needs_dev:
            (tree / "python.wasm").write_bytes(b"\0asm\1\0\0\0relinked")
            return {m.name: "python.wasm" for m in modules}
        files = {}
        for m in modules:
            rel = f"lib/python3.13/lib-dynload/{m.name}.so"
            (tree / rel).parent.mkdir(exist_ok=True)
            (tree / rel).write_bytes(b"side")
            files[m.name] = rel
        return files


def linked_artifact(tmp_path: Path, monkeypatch, *, needs_dev: bool, earlier: list[str]) -> tuple[Path, FakeTarget]:
    """A fake artifact with the kit, config.c, libpython (no -dev archive needed) and `earlier` linked modules;
    the toolchain is not provisioned and the import check not run."""
    art = fake_artifact(tmp_path, with_kit=True)
    config = art / "lib" / "python3.13" / "config-3.13-wasm32-wasi"
    config.mkdir()
    (config / "config.c").write_text(CONFIG_C)
    (art / "lib" / "python3.13" / "json").mkdir()
    (art / "lib" / "python3.13" / "json" / "__init__.py").write_text("")
    (art / "lib" / "python3.13" / "os.py").write_text("")
    (art / "lib" / "libpython3.13.a").write_bytes(b"!<arch>\n")
    record = json.loads((art / "BUILD.json").read_text())
    record["source_date_epoch"] = 0
    record["artifact"]["linked_modules"] = [
        {"name": n, "sources": [{"file": f"{n}.c", "sha256": "1" * 64}],
         "file": "python.wasm" if needs_dev else f"lib/python3.13/lib-dynload/{n}.so"} for n in earlier]
    if not needs_dev:
        (art / "lib" / "python3.13" / "lib-dynload").mkdir()
        for n in earlier:
            (art / "lib" / "python3.13" / "lib-dynload" / f"{n}.so").write_bytes(b"earlier")
        (art / "lib" / "python3.13" / "lib-dynload" / "_ctypes_test.cpython-313-wasm32-emscripten.so").write_bytes(b"")
    (art / "BUILD.json").write_text(json.dumps(record))
    target = FakeTarget("wasi" if needs_dev else "emscripten", needs_dev)

    class FakeToolchain:
        name, version = "wasi-sdk", "25"

    monkeypatch.setattr(link, "provision_for_record", lambda record, short, options: (target, FakeToolchain()))
    checked: list[list[str]] = []
    monkeypatch.setattr(link, "check_imports", lambda tree, names, cache_root, logf: checked.append(names))
    target.checked = checked  # type: ignore[attr-defined]
    return art, target


def c_source(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.c"
    path.write_text(f"/* {name} */\n")
    return str(path)


@pytest.mark.parametrize(("name", "what"), [("_json", "a built-in module of the artifact"),
                                            ("sys", "a built-in module of the artifact"),
                                            ("json", "a module of the artifact's standard library"),
                                            ("os", "a module of the artifact's standard library"),
                                            ("_ctypes_test", "an extension module in the artifact's lib-dynload")])
def test_link_refuses_a_module_named_like_one_of_the_artifacts_own(capsys, tmp_path, monkeypatch, name, what):
    art, target = linked_artifact(tmp_path, monkeypatch, needs_dev=name != "_ctypes_test", earlier=[])
    code, err = run_link(capsys, tmp_path, str(art), "--module", c_source(tmp_path, name), "-o", str(tmp_path / "o"))
    assert code == 2 and f"--module {name}: {name!r} is {what}" in err and "Traceback" not in err
    assert target.linked == [] and not (tmp_path / "o").exists()


def test_relinking_a_wasi_artifact_must_name_its_earlier_modules_again(capsys, tmp_path, monkeypatch):
    art, target = linked_artifact(tmp_path, monkeypatch, needs_dev=True, earlier=["wbdemo"])
    out = tmp_path / "out"
    code, err = run_link(capsys, tmp_path, str(art), "--module", c_source(tmp_path, "other"), "-o", str(out))
    assert code == 2 and "already has linked modules built into its python.wasm (wbdemo)" in err
    assert "link all modules in one call from the original artifact" in err and "--module wbdemo=" in err
    assert target.linked == [] and not out.exists()
    code, err = run_link(capsys, tmp_path, str(art), "--module", c_source(tmp_path, "wbdemo"),
                         "--module", c_source(tmp_path, "other"), "-o", str(out))
    assert code == 0, err
    record = json.loads((out / "BUILD.json").read_text())
    assert [m["name"] for m in record["artifact"]["linked_modules"]] == ["wbdemo", "other"]
    assert record["artifact"]["linked_modules"][0]["sources"][0]["sha256"] != "1" * 64  # built from the source given
    assert target.linked == ["wbdemo", "other"] and target.checked == [["wbdemo", "other"]]


def test_side_modules_linked_earlier_stay_and_stay_in_the_record(capsys, tmp_path, monkeypatch):
    art, target = linked_artifact(tmp_path, monkeypatch, needs_dev=False, earlier=["wbdemo"])
    out = tmp_path / "out"
    code, err = run_link(capsys, tmp_path, str(art), "--module", c_source(tmp_path, "other"), "-o", str(out))
    assert code == 0, err
    record = json.loads((out / "BUILD.json").read_text())
    assert [m["name"] for m in record["artifact"]["linked_modules"]] == ["wbdemo", "other"]
    assert (out / "lib" / "python3.13" / "lib-dynload" / "wbdemo.so").read_bytes() == b"earlier"
    assert target.checked == [["wbdemo", "other"]] and "kept from art: wbdemo" in err


def test_link_to_an_unwritable_or_impossible_output_is_one_error_line(capsys, tmp_path):
    src = c_source(tmp_path, "m")
    for out in ("/proc/out", f"{src}/out", str(tmp_path / "no" / "such" / "out")):
        code, err = run_link(capsys, tmp_path, str(tmp_path / "art"), "--module", src, "-o", out)
        assert code == 2 and err.count("error:") == 1 and "Traceback" not in err, err
        assert ("cannot write into /proc" in err or "is not a directory" in err or "does not exist" in err), err


def test_pc_fields_keep_a_directory_with_spaces_one_word(tmp_path):
    import shlex

    pc = tmp_path / "a cache dir" / "art" / "lib" / "pkgconfig"
    pc.mkdir(parents=True)
    for name, text in kit.pc_files(kit.link_plan(WASI_VARS), version="3.13.15", short="3.13",
                                   triple="wasm32-wasip1").items():
        (pc / name).write_text(text)
    embed = kit.read_pc(pc / "python-3.13-embed.pc")
    assert shlex.split(embed["Cflags"]) == [f"-I{pc}/../../include/python3.13"]
    assert shlex.split(embed["Libs"])[:2] == [f"-L{pc}/../../lib", "-lpython3.13"]


def test_wasi_link_argv_keeps_paths_with_spaces_whole(tmp_path, monkeypatch):
    from wasmbuild.targets import wasi
    from wasmbuild.toolchain import Toolchain

    tree = tmp_path / "out dir" / "art"
    pc = tree / "lib" / "pkgconfig"
    pc.mkdir(parents=True)
    for name, text in kit.pc_files(kit.link_plan(WASI_VARS), version="3.13.15", short="3.13",
                                   triple="wasm32-wasip1").items():
        (pc / name).write_text(text)
    src = Path(c_source(tmp_path, "m"))
    calls: list[list[str]] = []
    monkeypatch.setattr(wasi, "run", lambda argv, **kw: calls.append([str(a) for a in argv]))
    sdk = Toolchain("wasi-sdk", "25", tmp_path / "a cache" / "wasi sdk", "test")
    work = tmp_path / "out dir" / "work"
    work.mkdir()
    (tree / "lib" / "python3.13" / "config-3.13-wasm32-wasi").mkdir(parents=True)

    def fake_run(argv, **kw):
        calls.append([str(a) for a in argv])
        if "-o" in calls[-1]:
            Path(calls[-1][calls[-1].index("-o") + 1]).write_bytes(b"\0asm")
    monkeypatch.setattr(wasi, "run", fake_run)
    wasi.Wasi().link_modules(sdk, tree, [kit.Module("m", (src,))], work, tmp_path / "log", "3.13", "wasm32-wasip1")
    compile_m, combine, compile_main, link_argv, strip = calls
    assert combine[:3] == [f"{sdk.path}/bin/wasm-ld", "-r", "-o"] and combine[-1] == str(work / "m-0-m.o")
    assert (tree / "lib" / "python3.13" / "config-3.13-wasm32-wasi" / "modules" / "m.o").is_file()
    for argv in (compile_m, compile_main, link_argv):
        assert argv[:3] == [f"{sdk.path}/bin/clang", "--target=wasm32-wasip1",
                            f"--sysroot={sdk.path}/share/wasi-sysroot"]
    assert f"-I{pc}/../../include/python3.13" in compile_m and f"-L{pc}/../../lib" in link_argv
    assert strip[0] == f"{sdk.path}/bin/llvm-strip" and strip[-1] == str(work / "python.wasm")


def test_dotted_built_ins_get_a_finder_on_311_only(tmp_path, monkeypatch):
    import sys

    assert link.add_dotted_builtins_finder(tmp_path, "3.13", ["markupsafe._speedups"]) is None
    assert link.add_dotted_builtins_finder(tmp_path, "3.11", ["wbdemo"]) is None
    rel = link.add_dotted_builtins_finder(tmp_path, "3.11", ["markupsafe._speedups"])
    assert rel == "lib/python3.11/site-packages/_wasmbuild_dotted_builtins.pth"
    line = (tmp_path / rel).read_text()
    assert line.startswith("import ") and line.count("\n") == 1  # site executes a .pth line starting with import
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))

    def as_site_does():  # site.addpackage: exec(line) inside a function
        exec(line)

    as_site_does()
    finder = sys.meta_path[0]
    assert type(finder).__name__ == "type" and finder.__name__ == "DottedBuiltins"
    assert finder.find_spec("json.decoder") is None and finder.find_spec("sys") is None
    monkeypatch.setattr("_imp.is_builtin", lambda name: name == "pkg._ext")
    spec = finder.find_spec("pkg._ext", ["/somewhere"])
    assert spec.name == "pkg._ext" and spec.origin == "built-in"
