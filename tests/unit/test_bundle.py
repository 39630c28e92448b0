"""`wasmbuild bundle`'s host side (bundle/__init__.py): the app, the standard library's selection, the embedded
data's format, the record section, the command's checks. No compiler, no network."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from wasmbuild import bundle, cli
from wasmbuild.errors import UsageError

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_script_brings_the_modules_and_packages_beside_it_that_it_imports_and_nothing_else(tmp_path):
    (tmp_path / "app.py").write_text("import helper\n\ndef main():\n    from pkg import mod\n")
    (tmp_path / "helper.py").write_text("import json, util.sub\n")  # what an imported module imports comes too
    (tmp_path / "util.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "secret_notes.py").write_text("TOKEN = 'not for the bundle'\n")  # beside it, not imported
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "__init__.py").write_text("")
    (tmp_path / "notes").mkdir()  # no __init__.py: not importable as a package, left out
    (tmp_path / "notes" / "x.py").write_text("")
    (tmp_path / "README.txt").write_text("")
    app = bundle.load_app(tmp_path / "app.py", None)
    assert app.kind == "script" and app.main == "/app/app.py" and app.script_rel == "app.py"
    assert list(app.files) == ["app.py", "helper.py", "pkg/__init__.py", "pkg/mod.py", "util.py"]


def test_an_app_file_over_the_limit_is_refused_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "APP_FILE_LIMIT", 1000)
    (tmp_path / "app.py").write_text("import big\n")
    (tmp_path / "big.py").write_text("DATA = " + repr("x" * 2000) + "\n")
    with pytest.raises(UsageError, match=r"big.py: .* a bundle takes app files up to") as info:
        bundle.load_app(tmp_path / "app.py", None)
    assert "at run time" in (info.value.hint or "")


def test_a_package_directory_runs_as_python_dash_m():
    app = bundle.load_app(DATA / "bundle_pkg" / "wbpkg", None)
    assert app.kind == "module" and app.main == "wbpkg"
    assert list(app.files) == ["wbpkg/__init__.py", "wbpkg/__main__.py", "wbpkg/tool.py"]
    assert bundle.load_app(DATA / "bundle_pkg", "wbpkg.tool").main == "wbpkg.tool"


def touch(path: Path) -> Path:
    path.write_text("")
    return path


@pytest.mark.parametrize(("make", "module", "message"), [
    (lambda d: d / "missing.py", None, "app not found"),
    (lambda d: touch(d / "a.txt"), None, "not a Python script"),
    (lambda d: touch(d / "a.py"), "a", "--module applies to a package directory"),
    (lambda d: d, None, "without __init__.py or __main__.py"),
    (lambda d: d, "nothere", "--module nothere: no such module"),
])
def test_bad_apps_are_usage_errors(tmp_path, make, module, message):
    (tmp_path / "other.py").write_text("")
    with pytest.raises(UsageError, match=message):
        bundle.load_app(make(tmp_path), module)


def test_the_standard_library_selection_leaves_out_tests_and_unusable_packages(tmp_path):
    lib = tmp_path / "python3.13"
    for rel in ("os.py", "json/__init__.py", "json/decoder.py", "test/__init__.py", "test/test_x.py",
                "idlelib/__init__.py", "unittest/__init__.py", "unittest/test/__init__.py", "config-3.13-wasm/x.py",
                "bad_syntax.py", "data/x.py"):
        path = lib / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        if rel not in ("bad_syntax.py",):
            pyc = path.parent / "__pycache__" / f"{path.stem}.cpython-313.pyc"
            pyc.parent.mkdir(exist_ok=True)
            pyc.write_bytes(b"\0" * 16 + marshal.dumps(compile("x = 1", rel, "exec")))
    mods = {name: (pkg, filename) for name, pkg, _, filename in bundle.stdlib_modules(lib, "cpython-313")}
    assert mods == {"os": (False, "/lib/python3.13/os.py"), "json": (True, "/lib/python3.13/json/__init__.py"),
                    "json.decoder": (False, "/lib/python3.13/json/decoder.py"),
                    "unittest": (True, "/lib/python3.13/unittest/__init__.py")}


def test_the_blob_is_what_the_boot_code_reads(tmp_path):
    pyc = tmp_path / "os.cpython-313.pyc"
    code = marshal.dumps(compile("sep = '/'", "/lib/python3.13/os.py", "exec"))
    pyc.write_bytes(b"HEADER--16bytes!" + code)
    app = bundle.load_app(DATA / "bundle_app" / "app.py", None)
    blob = bundle.make_blob(app, [("os", False, pyc, "/lib/python3.13/os.py")], preinit=True)
    assert blob[:4] == bundle.MAGIC
    size = int.from_bytes(blob[4:8], "little")
    index = marshal.loads(blob[8:8 + size])
    base = 8 + size

    def payload(entry):
        return blob[base + entry[2]:base + entry[2] + entry[3]]

    assert index["os"][:2] == ("c", False) and payload(index["os"]) == code
    assert index["greeting"][0] == "s" and index["greeting"][4] == "/app/greeting.py"
    assert payload(index["greeting"]) == (DATA / "bundle_app" / "greeting.py").read_bytes()
    app_entry = index[""]
    assert app_entry["preinit"] is True and app_entry["main"] == ("script", "__main__", "/app/app.py")
    assert payload(app_entry["script"]) == (DATA / "bundle_app" / "app.py").read_bytes()
    assert "app" not in index  # the script is __main__, not an importable module


def test_the_record_travels_in_a_custom_section():
    module = b"\0asm\1\0\0\0" + bundle.custom_section("name", b"\1\2") + bundle.custom_section(bundle.SECTION,
                                                                                                b'{"a": 1}' * 40)
    assert bundle.read_custom_section(module, bundle.SECTION) == b'{"a": 1}' * 40
    assert bundle.read_custom_section(module, "absent") is None
    assert bundle.custom_section("x", b"y") == b"\0\3\1xy"


def test_the_guest_sources_ship_with_the_package():
    assert "wizer-initialize" in bundle._guest_source("entry.c")
    assert "class BundleFinder" in bundle._guest_source("boot.py")


def run_bundle(capsys, tmp_path, *argv):
    code = cli.main(["bundle", *argv, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


def test_bundle_command_checks_come_before_any_work(capsys, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    code, err = run_bundle(capsys, tmp_path, str(tmp_path / "nope.py"), "-o", str(tmp_path / "a.wasm"))
    assert code == 2 and "app not found" in err and "Traceback" not in err
    code, err = run_bundle(capsys, tmp_path, str(app), "-o", str(tmp_path / "a.zip"))
    assert code == 2 and "name a file ending in .wasm" in err
    code, err = run_bundle(capsys, tmp_path, str(app), "-o", str(tmp_path / "no" / "a.wasm"))
    assert code == 2 and "does not exist" in err
    code, err = run_bundle(capsys, tmp_path, str(app), "-o", str(tmp_path / "a.wasm"), "--python", "3.13",
                           "--artifact", str(tmp_path / "x.tar.gz"))
    assert code == 2 and "--python and --artifact" in err
    code, err = run_bundle(capsys, tmp_path, str(app), "-o", str(tmp_path / "a.wasm"), "--artifact",
                           str(tmp_path / "x.tar.gz"))
    assert code == 2 and "artifact not found" in err
    assert not (tmp_path / "a.wasm").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "cache"]



def test_the_snapshots_entropy_report_is_read_back():
    out = ("noise\nwasmbuild-bundle-entropy: 48 /app/app.py, line 1 (import tokens): 48 bytes in 2 calls\n")
    assert bundle.frozen_entropy(out) == (48, "/app/app.py, line 1 (import tokens): 48 bytes in 2 calls")
    assert bundle.frozen_entropy("Traceback ...\n") is None


def test_the_guest_counts_entropy_and_reseeds_random_instances():
    entry, boot = bundle._guest_source("entry.c"), bundle._guest_source("boot.py")
    assert "entropy_bytes += length" in entry and '"count_entropy"' in entry
    assert bundle.ENTROPY_MARK.strip() in boot and "random.Random.seed(instance)" in boot


def test_bundle_to_an_unwritable_directory_is_one_error_line(capsys, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    for out in ("/proc/a.wasm", str(app / "a.wasm")):
        code, err = run_bundle(capsys, tmp_path, str(app), "-o", out)
        assert code == 2 and "Traceback" not in err and err.count("error:") == 1, err
        assert "cannot write into /proc" in err or "is not a directory" in err


EMBED_VARS = {"LIBRARY": "libpython3.13.a", "MODLIBS": "Modules/expat/libexpat.a -lz", "LIBS": "-ldl",
              "PY_CORE_LDFLAGS": "-z stack-size=8388608 -Wl,--initial-memory=20971520"}


class FakeRun:
    """process.run / capture stand-ins: record each argv, make the file after -o."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, argv, **kwargs):
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        if "-o" in argv:
            Path(argv[argv.index("-o") + 1]).write_bytes(b"\0asm\1\0\0\0")
        import subprocess
        return subprocess.CompletedProcess(argv, 0, "", "")


def fake_artifact(root: Path) -> Path:
    """An unpacked WASI artifact as bundle() and link_modules() read it: the kit's .pc files, an empty stdlib."""
    from wasmbuild import kit

    (root / "lib" / "python3.13").mkdir(parents=True)
    pc = root / "lib" / "pkgconfig"
    pc.mkdir()
    for name, text in kit.pc_files(kit.link_plan(EMBED_VARS), version="3.13.15", short="3.13",
                                   triple="wasm32-wasip1").items():
        (pc / name).write_text(text)
    (root / "BUILD.json").write_text("{}")
    return root


def test_bundle_argv_keeps_paths_with_spaces_whole(tmp_path, monkeypatch):
    from wasmbuild.toolchain import Toolchain

    space = tmp_path / "a cache dir"
    root = fake_artifact(space / "cpython-3.13.15-wasm32-wasip1")
    sdk = Toolchain("wasi-sdk", "25", space / "wasi sdk", "test")
    fake = FakeRun()
    monkeypatch.setattr(bundle, "run", fake)
    monkeypatch.setattr(bundle, "capture", fake)
    out_dir = tmp_path / "out dir"
    out_dir.mkdir()
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    bundle.bundle(bundle.load_app(app, None), out_dir / "app.wasm", root=root,
                  record={"target": {"triple": "wasm32-wasip1"}, "source_date_epoch": 0,
                          "python": {"version": "3.13.15"}},
                  short="3.13", sdk=sdk, wasmtime=lambda: (space / "tools" / "wasmtime", {}), preinit=True,
                  cache_root=space)
    compile_argv, modules_argv, link_argv, wizer_argv = fake.calls
    assert modules_argv[-4] == "-c" and modules_argv[-3].endswith("/modules.c")
    assert compile_argv[:3] == [f"{sdk.path}/bin/clang", "--target=wasm32-wasip1",
                                f"--sysroot={sdk.path}/share/wasi-sysroot"]
    assert f"-I{root}/lib/pkgconfig/../../include/python3.13" in compile_argv
    assert f"-L{root}/lib/pkgconfig/../../lib" in link_argv
    assert wizer_argv[0] == f"{space}/tools/wasmtime"
    assert (out_dir / "app.wasm").is_file() and (out_dir / "app.BUNDLE.json").is_file()


# --- site-packages and package data ------------------------------------------------------------------------------

SITE_FILES = {
    "README.txt": "CPython's placeholder",
    "wbsite_pkg/__init__.py": "from importlib.metadata import version\nVALUE = 'pkg'\n",
    "wbsite_pkg/data.txt": "hello from the data file\n",
    "wbsite_pkg/py.typed": "",
    "wbsite_pkg/templates/page.html": "<p>{{ name }}</p>\n",
    "wbsite_pkg/templates/sub/part.html": "<b/>\n",
    "wbsite_pkg/sub/__init__.py": "",
    "wbsite_pkg/sub/mod.py": "X = 1\n",
    "wbsite_pkg/broken.py": "def broken(:\n",
    "wbsite_pkg/not-a-module.py": "x = 1\n",
    "wbsite_pkg/__pycache__/__init__.cpython-313.pyc": "stale",
    "wbsite_single.py": "ONE = 1\n",
    "wbsite_ns/part.py": "PART = 'namespace'\n",
    "json/__init__.py": "SHADOWED = True\n",  # the standard library's json comes first on sys.path
    "wbsite_pkg-1.2.3.dist-info/METADATA": "Metadata-Version: 2.1\nName: WBSite.Pkg\nVersion: 1.2.3\n\nBody\n",
    "wbsite_pkg-1.2.3.dist-info/RECORD": "wbsite_pkg/__init__.py,,\nwbsite_pkg/data.txt,,\n"
                                         "wbsite_pkg-1.2.3.dist-info/METADATA,,\n",
    "wbsite_pkg-1.2.3.dist-info/entry_points.txt": "[console_scripts]\nwbsite = wbsite_pkg:main\n\n"
                                                   "[wbsite.plugins]\nfirst = wbsite_pkg.sub.mod:X\n",
    "wbsite_pkg-1.2.3.dist-info/top_level.txt": "wbsite_pkg\n",
    "old_dist-0.1-py3.13.egg-info/PKG-INFO": "Metadata-Version: 1.0\nName: old-dist\nVersion: 0.1\n",
    "extras.pth": "import os\n",
}
SITE = "/lib/python3.13/site-packages"


def make_site(tmp_path: Path) -> Path:
    lib = tmp_path / "lib" / "python3.13"
    for rel, text in SITE_FILES.items():
        path = lib / "site-packages" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return lib


def test_site_packages_are_modules_data_and_distributions(tmp_path):
    site = bundle.site_packages(make_site(tmp_path))
    assert site.guest == SITE
    modules = {name: (package, source is not None, filename) for name, package, source, filename in site.modules}
    assert modules == {
        "json": (True, True, f"{SITE}/json/__init__.py"),
        "wbsite_ns": (True, False, f"{SITE}/wbsite_ns"),  # a namespace package: its directory
        "wbsite_ns.part": (False, True, f"{SITE}/wbsite_ns/part.py"),
        "wbsite_pkg": (True, True, f"{SITE}/wbsite_pkg/__init__.py"),
        "wbsite_pkg.broken": (False, True, f"{SITE}/wbsite_pkg/broken.py"),
        "wbsite_pkg.sub": (True, True, f"{SITE}/wbsite_pkg/sub/__init__.py"),
        "wbsite_pkg.sub.mod": (False, True, f"{SITE}/wbsite_pkg/sub/mod.py"),
        "wbsite_pkg.templates": (True, False, f"{SITE}/wbsite_pkg/templates"),
        "wbsite_pkg.templates.sub": (True, False, f"{SITE}/wbsite_pkg/templates/sub"),
        "wbsite_single": (False, True, f"{SITE}/wbsite_single.py"),
    }
    # Everything else is data, the metadata directories too; no bytecode, no placeholder README.
    assert sorted(site.data) == sorted([f"{SITE}/{rel}" for rel in SITE_FILES if not rel.endswith((".py", ".pyc"))
                                        and rel != "README.txt"] + [f"{SITE}/wbsite_pkg/not-a-module.py"])
    assert [(d.name, d.version, d.normalized, d.path) for d in site.distributions] == [
        ("old-dist", "0.1", "old_dist", f"{SITE}/old_dist-0.1-py3.13.egg-info"),
        ("WBSite.Pkg", "1.2.3", "wbsite_pkg", f"{SITE}/wbsite_pkg-1.2.3.dist-info")]
    assert not bundle.site_packages(tmp_path / "nothing")  # no site-packages: nothing to carry
    (tmp_path / "empty" / "site-packages").mkdir(parents=True)
    (tmp_path / "empty" / "site-packages" / "README.txt").write_text("")
    assert not bundle.site_packages(tmp_path / "empty")


def test_compile_py_compiles_each_source_or_marks_it(tmp_path):
    import subprocess
    import sys

    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("X = {'a', 'b'}\n")
    bad.write_text("def broken(:\n")
    (tmp_path / "compile.py").write_text(bundle._guest_source("compile.py"))
    (tmp_path / "list").write_text(f"{good}\n{bad}\n")
    proc = subprocess.run([sys.executable, "-S", "-s", "-B", str(tmp_path / "compile.py"), str(tmp_path / "list"),
                           str(tmp_path / "out")], capture_output=True, text=True,
                          env={"PYTHONHASHSEED": "0", "PATH": ""})
    assert proc.returncode == 0 and "bad.py: does not compile" in proc.stderr
    compiled = bundle.read_compiled((tmp_path / "out").read_bytes(), [str(good), str(bad)])
    namespace: dict = {}
    exec(marshal.loads(compiled[str(good)]), namespace)
    assert namespace["X"] == {"a", "b"} and compiled[str(bad)] is None
    with pytest.raises(bundle.BuildError, match="does not match its 1 sources"):
        bundle.read_compiled((tmp_path / "out").read_bytes(), [str(good)])


def test_an_apps_packages_bring_their_data(tmp_path):
    (tmp_path / "app.py").write_text("import mypkg\n")
    (tmp_path / "mypkg" / "templates").mkdir(parents=True)
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "res.json").write_text("{}")
    (tmp_path / "mypkg" / "templates" / "a.html").write_text("<a/>")
    (tmp_path / "mypkg" / "__pycache__").mkdir()
    (tmp_path / "mypkg" / "__pycache__" / "x.pyc").write_text("")
    (tmp_path / "mypkg" / ".hidden").write_text("")
    (tmp_path / "notes.txt").write_text("beside the script: not the app's data")
    app = bundle.load_app(tmp_path / "app.py", None)
    assert list(app.files) == ["app.py", "mypkg/__init__.py"]
    assert list(app.data) == ["mypkg/res.json", "mypkg/templates/a.html"]
    assert list(bundle.load_app(tmp_path / "mypkg", None).data) == ["mypkg/res.json", "mypkg/templates/a.html"]
    assert list(bundle.load_app(tmp_path, "app").data) == ["mypkg/res.json", "mypkg/templates/a.html"]


def blob_index(blob: bytes) -> tuple[dict, int]:
    size = int.from_bytes(blob[4:8], "little")
    return marshal.loads(blob[8:8 + size]), 8 + size


def site_blob(tmp_path: Path) -> bytes:
    """A bundle.bin with the site-packages of make_site (compiled by this Python), an app with package data."""
    site = bundle.site_packages(make_site(tmp_path))
    compiled = {}
    for filename, path in site.sources.items():
        try:
            compiled[filename] = marshal.dumps(compile(path.read_bytes(), filename, "exec", dont_inherit=True))
        except SyntaxError:
            compiled[filename] = None
    app_dir = tmp_path / "app"
    (app_dir / "wbapp_pkg").mkdir(parents=True, exist_ok=True)
    (app_dir / "app.py").write_text("import wbapp_pkg\n")
    (app_dir / "wbapp_pkg" / "__init__.py").write_text("")
    (app_dir / "wbapp_pkg" / "res.json").write_text('{"app": true}')
    stdlib_pyc = tmp_path / "json.pyc"
    stdlib_pyc.write_bytes(b"\0" * 16 + marshal.dumps(compile("", "/lib/python3.13/json/__init__.py", "exec")))
    return bundle.make_blob(bundle.load_app(app_dir / "app.py", None),
                            [("json", True, stdlib_pyc, "/lib/python3.13/json/__init__.py")], preinit=True,
                            site=site, compiled=compiled)


def test_the_blob_carries_site_packages_and_data(tmp_path):
    blob = site_blob(tmp_path)
    assert site_blob(tmp_path) == blob  # deterministic
    index, base = blob_index(blob)
    description = index.pop("")
    assert index["json"][4] == "/lib/python3.13/json/__init__.py"  # not site-packages' json
    assert index["wbsite_pkg"][:2] == ("c", True) and index["wbsite_ns"] == ("n", True, 0, 0, f"{SITE}/wbsite_ns")
    kind, _, offset, size, _ = index["wbsite_pkg.broken"]
    assert kind == "s" and blob[base + offset:base + offset + size] == b"def broken(:\n"  # raises when imported
    offset, size = description["files"][f"{SITE}/wbsite_pkg/data.txt"]
    assert blob[base + offset:base + offset + size] == b"hello from the data file\n"
    assert "/app/wbapp_pkg/res.json" in description["files"]
    assert description["distributions"] == [("old_dist", f"{SITE}/old_dist-0.1-py3.13.egg-info"),
                                            ("wbsite_pkg", f"{SITE}/wbsite_pkg-1.2.3.dist-info")]


@pytest.fixture
def guest_importer(tmp_path, monkeypatch):
    """boot.py's importer running in this Python on site_blob (a stand-in for entry.c's _wasmbuild_bundle): its
    modules, package data and distributions, and nothing of it left behind."""
    import sys
    import types

    blob = site_blob(tmp_path)
    fake = types.ModuleType("_wasmbuild_bundle")
    fake.data = lambda: memoryview(blob)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "_wasmbuild_bundle", fake)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    before = set(sys.modules)
    namespace: dict = {"__name__": "_wasmbuild_boot"}
    exec(compile(bundle._guest_source("boot.py"), "boot.py", "exec"), namespace)
    yield namespace
    for name in set(sys.modules) - before:
        if name.startswith(("wbsite_", "wbapp_")):
            del sys.modules[name]


def test_the_guest_importer_serves_modules_and_package_data(guest_importer):
    import importlib
    import importlib.resources
    import importlib.util
    import pkgutil
    import warnings
    import zipimport

    pkg = importlib.import_module("wbsite_pkg")
    assert pkg.VALUE == "pkg" and pkg.__file__ == f"{SITE}/wbsite_pkg/__init__.py"
    assert importlib.import_module("wbsite_pkg.sub.mod").X == 1
    assert importlib.import_module("wbsite_single").ONE == 1
    assert importlib.import_module("wbsite_ns.part").PART == "namespace"
    with pytest.raises(SyntaxError):
        importlib.import_module("wbsite_pkg.broken")
    # importlib.resources
    files = importlib.resources.files("wbsite_pkg")
    assert files.joinpath("data.txt").read_text() == "hello from the data file\n"
    assert (files / "templates" / "sub" / "part.html").read_bytes() == b"<b/>\n"
    assert files.joinpath("templates", "page.html").is_file() and files.joinpath("templates").is_dir()
    assert {p.name for p in files.iterdir()} >= {"__init__.py", "data.txt", "py.typed", "templates", "sub"}
    assert not files.joinpath("nope.txt").exists()
    with pytest.raises(FileNotFoundError):
        files.joinpath("nope.txt").read_bytes()
    with files.joinpath("data.txt").open("rb") as f:
        assert f.read(5) == b"hello"
    with warnings.catch_warnings():  # the older functions (deprecated in 3.11 and 3.12, not in 3.13)
        warnings.simplefilter("ignore", DeprecationWarning)
        with importlib.resources.open_text("wbsite_pkg", "data.txt") as f:
            text = f.read()
    assert text.startswith("hello")
    assert importlib.resources.files("wbapp_pkg").joinpath("res.json").read_text() == '{"app": true}'
    # get_data, as pkgutil and __file__-relative code use it
    assert pkgutil.get_data("wbsite_pkg", "templates/page.html") == b"<p>{{ name }}</p>\n"
    assert pkg.__loader__.get_data(pkg.__file__.rpartition("/")[0] + "/data.txt").startswith(b"hello")
    with pytest.raises(OSError):
        pkg.__loader__.get_data(f"{SITE}/wbsite_pkg/nope.txt")
    # what Jinja's PackageLoader needs: a zipimporter with the bundle as its archive, the files listed in it
    spec = importlib.util.find_spec("wbsite_pkg")
    assert isinstance(spec.loader, zipimport.zipimporter)
    root = next(iter(spec.submodule_search_locations)) + "/templates"
    prefix = root[len(spec.loader.archive):].lstrip("/") + "/"
    assert sorted(n[len(prefix):] for n in spec.loader._get_files() if n.startswith(prefix)) == [
        "page.html", "sub/part.html"]
    assert spec.loader._files.keys() == spec.loader._get_files().keys()
    assert spec.loader.get_data(f"{root}/page.html") == b"<p>{{ name }}</p>\n"


def test_the_guest_importer_serves_distributions(guest_importer):
    import importlib.metadata as md

    assert md.version("wbsite-pkg") == md.version("WBSite.Pkg") == "1.2.3"
    assert md.metadata("wbsite_pkg")["Name"] == "WBSite.Pkg" and md.version("old-dist") == "0.1"
    names = {d.metadata["Name"] for d in md.distributions()}
    assert {"WBSite.Pkg", "old-dist"} <= names
    (plugin,) = md.entry_points(group="wbsite.plugins")
    assert (plugin.name, plugin.value, plugin.dist.version) == ("first", "wbsite_pkg.sub.mod:X", "1.2.3")
    assert plugin.load() == 1
    assert [ep.name for ep in md.entry_points(group="console_scripts", name="wbsite")] == ["wbsite"]
    files = md.files("wbsite_pkg")
    assert [str(f) for f in files] == ["wbsite_pkg/__init__.py", "wbsite_pkg/data.txt",
                                       "wbsite_pkg-1.2.3.dist-info/METADATA"]
    assert files[1].read_text() == "hello from the data file\n"
    assert md.packages_distributions()["wbsite_pkg"] == ["WBSite.Pkg"]
    with pytest.raises(md.PackageNotFoundError):
        md.version("wbsite-absent")


def test_a_bundle_names_the_linked_c_modules_it_cannot_carry(tmp_path, monkeypatch):
    from wasmbuild.toolchain import Toolchain

    root = fake_artifact(tmp_path / "cpython-3.13.15-wasm32-wasip1")
    fake = FakeRun()
    monkeypatch.setattr(bundle, "run", fake)
    monkeypatch.setattr(bundle, "capture", fake)
    warnings: list[str] = []
    monkeypatch.setattr(bundle.log, "warn", warnings.append)
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    record = bundle.bundle(bundle.load_app(app, None), tmp_path / "app.wasm", root=root,
                           record={"target": {"triple": "wasm32-wasip1"}, "source_date_epoch": 0,
                                   "python": {"version": "3.13.15"},
                                   "artifact": {"linked_modules": [{"name": "markupsafe._speedups"}]}},
                           short="3.13", sdk=Toolchain("wasi-sdk", "25", tmp_path / "sdk", "test"),
                           wasmtime=lambda: (tmp_path / "wasmtime", {}), preinit=True, cache_root=tmp_path)
    assert len(warnings) == 1 and "markupsafe._speedups" in warnings[0] and "not in the bundle" in warnings[0]
    assert record["packages"] == [] and record["site_packages"] == {"modules": 0, "files": 0, "compiled": 0}


def test_modules_c_registers_dotted_names_with_their_init_function():
    text = bundle.modules_c(["markupsafe._speedups", "fastmod"])
    assert "extern PyObject *PyInit__speedups(void);" in text and "extern PyObject *PyInit_fastmod(void);" in text
    assert 'PyImport_AppendInittab("markupsafe._speedups", PyInit__speedups)' in text
    assert 'PyImport_AppendInittab("fastmod", PyInit_fastmod)' in text
    assert "int wasmbuild_register_modules(void)" in bundle.modules_c([])


def test_a_bundle_links_the_objects_the_artifact_keeps(tmp_path, monkeypatch):
    from wasmbuild.toolchain import Toolchain

    root = fake_artifact(tmp_path / "cpython-3.13.15-wasm32-wasip1")
    obj = root / "lib/python3.13/config-3.13-wasm32-wasi/modules/markupsafe._speedups.o"
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"\0asm")
    fake = FakeRun()
    monkeypatch.setattr(bundle, "run", fake)
    monkeypatch.setattr(bundle, "capture", fake)
    warnings: list[str] = []
    monkeypatch.setattr(bundle.log, "warn", warnings.append)
    app = tmp_path / "app.py"
    app.write_text("print(1)\n")
    rel = str(obj.relative_to(root))
    bundle.bundle(bundle.load_app(app, None), tmp_path / "app.wasm", root=root,
                  record={"target": {"triple": "wasm32-wasip1"}, "source_date_epoch": 0,
                          "python": {"version": "3.13.15"},
                          "artifact": {"linked_modules": [{"name": "markupsafe._speedups", "object": rel},
                                                          {"name": "old_mod"}]}},
                  short="3.13", sdk=Toolchain("wasi-sdk", "25", tmp_path / "sdk", "test"),
                  wasmtime=lambda: (tmp_path / "wasmtime", {}), preinit=True, cache_root=tmp_path)
    link_argv = fake.calls[2]
    assert str(obj) in link_argv
    assert len(warnings) == 1 and "old_mod" in warnings[0] and "markupsafe" not in warnings[0]

