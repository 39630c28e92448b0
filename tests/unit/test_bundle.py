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
    compile_argv, link_argv, wizer_argv = fake.calls
    assert compile_argv[:3] == [f"{sdk.path}/bin/clang", "--target=wasm32-wasip1",
                                f"--sysroot={sdk.path}/share/wasi-sysroot"]
    assert f"-I{root}/lib/pkgconfig/../../include/python3.13" in compile_argv
    assert f"-L{root}/lib/pkgconfig/../../lib" in link_argv
    assert wizer_argv[0] == f"{space}/tools/wasmtime"
    assert (out_dir / "app.wasm").is_file() and (out_dir / "app.BUNDLE.json").is_file()
