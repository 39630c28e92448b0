"""`wasmbuild install`'s parts without the network or a compiler: pip's report and failures read, wheel tags,
what an sdist needs, the compiler wrapper, the target-patched pip, what is installed and recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from wasmbuild.cli import main
from wasmbuild.errors import BuildError, ChecksumError, PackageError
from wasmbuild.packages import install, resolve, wheels
from wasmbuild.packages.resolve import Pin

SHA = "a" * 64


def report(**download_info):
    return {"version": "1", "install": [
        {"metadata": {"name": "MarkupSafe", "version": "3.0.4", "requires_python": ">=3.9"}, "requested": True,
         "download_info": {"url": "https://index.example/m/markupsafe-3.0.4.tar.gz",
                           "archive_info": download_info}},
        {"metadata": {"name": "attrs", "version": "26.1.0"},
         "download_info": {"url": "https://index.example/a/attrs-26.1.0-py3-none-any.whl#sha256=" + SHA,
                           "archive_info": {"hash": f"sha256={SHA}"}}}]}


def test_the_report_gives_each_distribution_with_its_file_and_sha256():
    pins = resolve.parse_report(report(hashes={"sha256": SHA}))
    assert [(p.name, p.version, p.filename, p.sha256, p.requested) for p in pins] == [
        ("attrs", "26.1.0", "attrs-26.1.0-py3-none-any.whl", SHA, False),
        ("MarkupSafe", "3.0.4", "markupsafe-3.0.4.tar.gz", SHA, True)]
    assert pins[0].is_wheel and not pins[1].is_wheel


def test_a_distribution_without_a_sha256_is_refused():
    with pytest.raises(ChecksumError, match="no sha256"):
        resolve.parse_report(report())
    with pytest.raises(BuildError, match="format"):
        resolve.parse_report({"version": "2", "install": []})


@pytest.mark.parametrize(("output", "kind", "words"), [
    ("ERROR: Could not find a version that satisfies the requirement nope (from versions: none)\n"
     "ERROR: No matching distribution found for nope", PackageError, "Could not find a version"),
    ("ERROR: Cannot install a==1 and a==2 because these package versions have conflicting dependencies.\n"
     "ERROR: ResolutionImpossible: ...", PackageError, "conflict"),
    ("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n attrs from ...\n"
     "    Expected sha256 000\n         Got        c64", ChecksumError, "does not match its --hash"),
    ("ERROR: Hashes are required in --require-hashes mode, but they are missing from some requirements.",
     ChecksumError, "Hashes are required"),
    ("  Collecting maturin<2.0\n  error: subprocess-exited-with-error\n  cargo metadata failed\n"
     "ERROR: Failed to build 'hypothesis' when installing build dependencies for hypothesis", PackageError,
     "needs Rust"),
])
def test_pip_failures_become_one_error_with_its_exit_code(output, kind, words):
    exc = resolve.pip_failure(output, "resolving x")
    assert type(exc) is kind and words in str(exc)
    assert exc.exit_code == (14 if kind is PackageError else 4)


def test_requirements_whose_markers_exclude_the_target_are_found_in_pips_output():
    line = "Ignoring iniconfig: markers 'sys_platform == \"linux\"' don't match your environment"
    assert [m.groups() for m in resolve.IGNORED.finditer(line)] == [("iniconfig", "sys_platform == \"linux\"")]


def test_wheel_tags_and_the_target_platform():
    assert wheels.wheel_tags("markupsafe-3.0.4-cp313-cp313-wasi_0_0_0_wasm32.whl") == (
        "cp313", "cp313", "wasi_0_0_0_wasm32")
    pin = Pin("x", "1", "u", SHA, "x-1.tar.gz", True, None)
    wheels.check_wheel_platform(Path("x-1-py3-none-any.whl"), "wasi_0_0_0_wasm32", pin)
    wheels.check_wheel_platform(Path("x-1-cp313-cp313-wasi_0_0_0_wasm32.whl"), "wasi_0_0_0_wasm32", pin)
    with pytest.raises(PackageError, match="is for linux_x86_64, not this artifact"):
        wheels.check_wheel_platform(Path("x-1-cp313-cp313-linux_x86_64.whl"), "wasi_0_0_0_wasm32", pin)
    with pytest.raises(PackageError, match="not a wheel file name"):
        wheels.wheel_tags("x.whl")
    assert resolve.wheel_tag_platform({"platform": "emscripten-3.1.69-wasm32"}) == "emscripten_3_1_69_wasm32"


def test_an_sdist_needing_rust_or_fortran_is_one_line(tmp_path):
    pin = Pin("pkg", "1.0", "u", SHA, "pkg-1.0.tar.gz", True, None)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.c").write_text("")
    found = wheels.native_sources(tmp_path)
    assert found == {"c": ["src/mod.c"], "fortran": [], "rust": []}
    wheels.refuse_unbuildable(pin, ["setuptools"], found)
    with pytest.raises(PackageError, match="needs Rust to build \\(maturin>=1\\)"):
        wheels.refuse_unbuildable(pin, ["maturin>=1"], found)
    (tmp_path / "Cargo.toml").write_text("")
    with pytest.raises(PackageError, match="needs Rust to build \\(Cargo.toml\\)"):
        wheels.refuse_unbuildable(pin, [], wheels.native_sources(tmp_path))
    (tmp_path / "Cargo.toml").unlink()
    (tmp_path / "lapack.f90").write_text("")
    with pytest.raises(PackageError, match="needs Fortran"):
        wheels.refuse_unbuildable(pin, [], wheels.native_sources(tmp_path))


def test_build_system_defaults_and_a_broken_pyproject(tmp_path):
    assert wheels.build_system(tmp_path) == (["setuptools>=40.8.0"], "setuptools.build_meta:__legacy__")
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["meson-python"]\n'
                                             'build-backend = "mesonpy"\n')
    assert wheels.build_system(tmp_path) == (["meson-python"], "mesonpy")
    (tmp_path / "pyproject.toml").write_text("[build-system\n")
    with pytest.raises(PackageError, match="does not parse"):
        wheels.build_system(tmp_path)


def test_the_first_error_of_a_build_log(tmp_path):
    log = tmp_path / "log"
    log.write_text("building\n  error: subprocess-exited-with-error\nsrc/m.c:3:1: error: unknown type name 'x'\n"
                   "error: command 'cc' failed\n")
    assert wheels.first_error(log) == "error: unknown type name 'x'"


def wrapper(tmp_path: Path, relocatable: bool) -> tuple[list[str], Path]:
    """Run cross_compile.py with a stand-in tool that records its argv."""
    from importlib import resources

    tool = tmp_path / "tool.py"
    out = tmp_path / "argv.json"
    tool.write_text(f"import json, sys\njson.dump(sys.argv[1:], open({str(out)!r}, 'w'))\n")
    config = {"cc": [sys.executable, str(tool), "--target=wasm32"], "cxx": [sys.executable, str(tool)],
              "ldshared": [sys.executable, str(tool), "-r"], "cflags": ["-O2", "-I/artifact/include"],
              "ldflags": [], "drop": [str(tmp_path / "build-python")], "env": {}, "relocatable": relocatable}
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    return [sys.executable, str(resources.files("wasmbuild.packages").joinpath("cross_compile.py")), str(cfg)], out


def test_the_compiler_wrapper_drops_the_build_pythons_includes_and_adds_the_artifacts(tmp_path):
    argv, out = wrapper(tmp_path, relocatable=True)
    bp = tmp_path / "build-python"
    subprocess.run([*argv, "cc", f"-I{bp}/Include", "-I", str(bp), "-Isrc", "-DX=1", "-c", "m.c", "-o", "m.o"],
                   check=True, cwd=tmp_path)
    got = json.loads(out.read_text())
    assert got[:3] == ["--target=wasm32", "-O2", "-I/artifact/include"]
    assert f"-ffile-prefix-map={tmp_path}=/src" in got
    assert got[-6:] == ["-Isrc", "-DX=1", "-c", "m.c", "-o", "m.o"] and str(bp) not in " ".join(got)


def test_the_shared_module_link_on_wasi_is_a_relocatable_object_of_the_objects(tmp_path):
    argv, out = wrapper(tmp_path, relocatable=True)
    subprocess.run([*argv, "ldshared", "-shared", "a.o", "b.o", "-L/usr/lib", "-lm", "-o", "m.so"], check=True,
                   cwd=tmp_path)
    assert json.loads(out.read_text()) == ["-r", "-o", "m.so", "a.o", "b.o"]
    argv, out = wrapper(tmp_path, relocatable=False)
    subprocess.run([*argv, "ldshared", "a.o", "-o", "m.so"], check=True, cwd=tmp_path)
    assert json.loads(out.read_text()) == ["-r", "a.o", "-o", "m.so"]


def test_pip_under_the_wrapper_sees_the_target(tmp_path):
    """pip debug (no network) under pip_for_target.py: the target's platform and tags."""
    from importlib import resources

    pytest.importorskip("pip")
    sysdir = tmp_path / "sysconfig"
    sysdir.mkdir()
    import sysconfig
    vars_ = sysconfig.get_config_vars()
    (sysdir / "_sysconfigdata__wasi_wasm32-wasi.py").write_text(f"build_time_vars = {dict(vars_)!r}\n")
    facts = {"sys_platform": "wasi", "platform_system": "WASI", "platform_machine": "wasm32",
             "platform_release": "", "platform_version": "", "platform": "wasi-0.0.0-wasm32",
             "multiarch": "wasm32-wasi", "sysconfig_dir": str(sysdir),
             "sysconfig_name": "_sysconfigdata__wasi_wasm32-wasi"}
    (tmp_path / "t.json").write_text(json.dumps(facts))
    shim = resources.files("wasmbuild.packages").joinpath("pip_for_target.py")
    proc = subprocess.run([sys.executable, str(shim), str(tmp_path / "t.json"), "--isolated", "debug", "--verbose"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sys.platform: wasi" in proc.stdout
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}-cp{sys.version_info[0]}{sys.version_info[1]}-wasi_0_0_0_wasm32"
    assert tag in proc.stdout and "linux" not in proc.stdout.split("Compatible tags")[1]


def test_installed_extension_modules_and_their_record(tmp_path):
    site = tmp_path / "site-packages"
    (site / "markupsafe").mkdir(parents=True)
    ext = site / "markupsafe" / "_speedups.cpython-313-wasm32-wasi.so"
    ext.write_bytes(b"\0asm")
    (site / "top.cpython-313-wasm32-wasi.so").write_bytes(b"\0asm")
    assert install._extension_modules(site, ".cpython-313-wasm32-wasi.so") == {
        "markupsafe._speedups": ext, "top": site / "top.cpython-313-wasm32-wasi.so"}
    info = site / "MarkupSafe-3.0.4.dist-info"
    info.mkdir()
    (info / "RECORD").write_text("markupsafe/__init__.py,sha256=x,1\n"
                                 "markupsafe/_speedups.cpython-313-wasm32-wasi.so,sha256=y,2\n"
                                 "../../../bin/tool,sha256=z,3\nMarkupSafe-3.0.4.dist-info/RECORD,,\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: MarkupSafe\nVersion: 3.0.4\n"
                                   "License-Expression: BSD-3-Clause\n\nText\nName: not-this\n")
    install._drop_from_record(site, [ext])
    assert (info / "RECORD").read_text() == "markupsafe/__init__.py,sha256=x,1\nMarkupSafe-3.0.4.dist-info/RECORD,,\n"
    wheel = wheels.Wheel(tmp_path / "w.whl", Pin("markupsafe", "3.0.4", "u", SHA, "f", True, None), None)
    assert wheels.metadata_license(wheels.metadata_headers((info / "METADATA").read_text())) == {
        "license": "BSD-3-Clause"}
    assert install._top_levels(site, wheel) == {"markupsafe"}


def test_install_with_nothing_to_install_is_a_usage_error(capsys, tmp_path):
    assert main(["install", str(tmp_path / "art"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nothing to install" in err and "Traceback" not in err
