"""The command line: every bad option is one `error:` line (or argparse's usage error) and exit code 2, with
nothing run and nothing written; `run` takes Python's arguments after `--` only."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from wasmbuild import artifact, cli, pipeline
from wasmbuild.artifact import artifact_runtime
from wasmbuild.checks import regrtest
from wasmbuild.recipe import available_recipes, project_root
from wasmbuild.targets import get_target

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_run(monkeypatch):
    """artifact.run_artifact replaced (cli imports it at call time): records its arguments, runs nothing."""
    calls = []

    def run_artifact(artifact, args, cache_root, *, dirs=None, env=None, node=None, **limits):
        calls.append({"artifact": artifact, "args": list(args), "cache_root": cache_root, "dirs": dirs, "env": env,
                      "node": node, "limits": limits})
        return 0

    monkeypatch.setattr(artifact, "run_artifact", run_artifact)
    return calls


def run_main(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:") or ": error: " in line]
    assert len(lines) == 1, err
    return lines[0]


# --- 9. positive integers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["build", "--jobs", "0"], ["build", "-j", "-2"], ["build", "--jobs", "many"],
    ["test", "--jobs", "0"], ["matrix", "-j", "0"],
    ["bench", "--runs", "0"], ["bench", "--runs", "-1"],
    ["test", "--timeout", "0"], ["matrix", "--timeout", "-5"], ["test", "--timeout", "1.5"],
])
def test_counts_and_timeouts_must_be_positive_integers(capsys, argv):
    code, err = run_main(capsys, *argv)
    assert code == 2
    assert "expected a positive integer" in error_line(err)
    assert "Traceback" not in err


# --- 10. empty paths, files named as directories ---------------------------------------------------------------


@pytest.mark.parametrize(("argv", "option"), [
    (["build", "--cache-dir", ""], "--cache-dir"),
    (["toolchain", "--cache-dir", ""], "--cache-dir"),
    (["run", "--cache-dir", "", "art", "--"], "--cache-dir"),
    (["smoke-test", "--cache-dir", "", "art"], "--cache-dir"),
    (["build", "--dist-dir", ""], "--dist-dir"),
    (["matrix", "--report-dir", ""], "--report-dir"),
    (["test", "--report-dir", ""], "--report-dir"),
    (["build", "--mirror-dir", ""], "--mirror-dir"),
    (["build", "--wasi-sdk-path", ""], "--wasi-sdk-path"),
    (["run", "", "--"], "artifact"),
])
def test_empty_paths_are_usage_errors_and_the_cwd_stays_untouched(capsys, tmp_path, monkeypatch, fake_run, argv,
                                                                  option):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, *argv)
    assert code == 2
    assert f"argument {option}: empty path" in error_line(err)
    assert list(tmp_path.iterdir()) == []  # no CACHEDIR.TAG, no dist/ in the current directory
    assert fake_run == []


def test_cache_dir_naming_a_file_is_a_usage_error(capsys, tmp_path, fake_run):
    afile = tmp_path / "cache"
    afile.write_text("not a directory")
    code, err = run_main(capsys, "run", "--cache-dir", str(afile), str(tmp_path / "art"), "--")
    assert code == 2
    assert error_line(err) == f"error: --cache-dir {afile} is a file, not a directory"
    assert fake_run == []


def test_cache_dir_below_a_file_is_a_usage_error(capsys, tmp_path, fake_run):
    afile = tmp_path / "file"
    afile.write_text("x")
    code, err = run_main(capsys, "run", "--cache-dir", str(afile / "cache"), str(tmp_path / "art"), "--")
    assert code == 2
    assert error_line(err).startswith(f"error: --cache-dir {afile / 'cache'}: cannot create the cache there")


def test_cache_dir_from_the_environment_is_named_as_such(capsys, tmp_path, monkeypatch, fake_run):
    afile = tmp_path / "cache"
    afile.write_text("x")
    monkeypatch.setenv("WASMBUILD_CACHE_DIR", str(afile))
    code, err = run_main(capsys, "run", str(tmp_path / "art"), "--")
    assert code == 2
    assert error_line(err) == f"error: WASMBUILD_CACHE_DIR {afile} is a file, not a directory"


def test_empty_wasmbuild_cache_dir_counts_as_unset(capsys, tmp_path, monkeypatch, fake_run):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WASMBUILD_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cli.main(["run", "art", "--"]) == 0
    assert fake_run[0]["cache_root"] == (tmp_path / "xdg" / "wasmbuild").resolve()
    assert not (tmp_path / "CACHEDIR.TAG").exists()


@pytest.mark.parametrize("option", ["--dist-dir", "--report-dir"])
def test_output_dir_naming_a_file_is_a_usage_error(capsys, tmp_path, monkeypatch, option):
    afile = tmp_path / "out"
    afile.write_text("x")
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("nothing may be built"))
    newest = max(available_recipes(project_root()), key=lambda v: [int(p) for p in v.split(".")])
    code, err = run_main(capsys, "matrix", "--python", newest, "--cache-dir", str(tmp_path / "c"), option, str(afile))
    assert code == 2
    assert error_line(err) == f"error: {option} {afile} is a file, not a directory"


# --- 11. WASMBUILD_MIRROR_DIR vs --mirror-dir --------------------------------------------------------------------


def test_mirror_dir_error_names_the_environment_variable(capsys, tmp_path, monkeypatch):
    missing = tmp_path / "no-such-mirror"
    monkeypatch.setenv("WASMBUILD_MIRROR_DIR", str(missing))
    code, err = run_main(capsys, "toolchain", "--cache-dir", str(tmp_path / "cache"))
    assert code == 2
    assert error_line(err) == f"error: WASMBUILD_MIRROR_DIR {missing} does not exist"
    assert "--mirror-dir" not in error_line(err)
    assert not (tmp_path / "cache").exists()  # checked before the cache is made


def test_mirror_dir_error_names_the_option_when_given(capsys, tmp_path, monkeypatch):
    afile = tmp_path / "mirror"
    afile.write_text("x")
    monkeypatch.setenv("WASMBUILD_MIRROR_DIR", str(tmp_path))  # the option wins over the environment
    code, err = run_main(capsys, "toolchain", "--cache-dir", str(tmp_path / "cache"), "--mirror-dir", str(afile))
    assert code == 2
    assert error_line(err) == f"error: --mirror-dir {afile} is a file, not a directory"


def test_mirror_dir_from_option_environment_or_neither(tmp_path, monkeypatch):
    args = cli._parser().parse_args(["build", "--debian-mirror", "http://127.0.0.1:9/debian"])
    assert cli._sources(args).mirror_dir is None
    monkeypatch.setenv("WASMBUILD_MIRROR_DIR", "")
    assert cli._sources(args).mirror_dir is None
    monkeypatch.setenv("WASMBUILD_MIRROR_DIR", str(tmp_path))
    assert cli._sources(args).mirror_dir == tmp_path.resolve()
    (tmp_path / "other").mkdir()
    args.mirror_dir = tmp_path / "other"
    assert cli._sources(args).mirror_dir == (tmp_path / "other").resolve()


def test_bad_toolchain_route_from_the_environment_is_a_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WASMBUILD_TOOLCHAIN_ROUTE", "teleport")
    code, err = run_main(capsys, "toolchain", "--cache-dir", str(tmp_path / "cache"))
    assert code == 2
    assert error_line(err) == "error: WASMBUILD_TOOLCHAIN_ROUTE=teleport: not a toolchain route"


# --- 12. run: Python's arguments after -- ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["run", "ART", "--dir", "DIR", "--", "-c", "print(1)"],
    ["run", "--dir", "DIR", "ART", "--", "-c", "print(1)"],
    ["run", "--dir=DIR", "ART", "--", "-c", "print(1)"],
])
def test_run_options_may_come_before_or_after_the_artifact(tmp_path, fake_run, argv):
    argv = [str(tmp_path / "art") if a == "ART" else str(tmp_path) if a == "DIR" else
            a.replace("DIR", str(tmp_path)) for a in argv]
    assert cli.main(["run", "--cache-dir", str(tmp_path / "c"), *argv[1:]]) == 0
    (call,) = fake_run
    assert call["artifact"] == tmp_path / "art"
    assert call["dirs"] == [(tmp_path, str(tmp_path))]
    assert call["args"] == ["-c", "print(1)"]


def test_run_hands_everything_after_the_first_double_dash_to_python(tmp_path, fake_run):
    assert cli.main(["run", "--cache-dir", str(tmp_path), "art", "--", "--dir", "x", "--", "-c", "1"]) == 0
    assert fake_run[0]["args"] == ["--dir", "x", "--", "-c", "1"]
    assert fake_run[0]["dirs"] is None
    assert cli.main(["run", "--cache-dir", str(tmp_path), "art", "--"]) == 0
    assert fake_run[1]["args"] == []


def test_run_without_double_dash_and_extra_arguments_is_an_error_with_the_hint(capsys, tmp_path, fake_run):
    code, err = run_main(capsys, "run", "--cache-dir", str(tmp_path / "c"), "art", "-c", "print(1)")
    assert code == 2
    assert error_line(err) == "error: run: unexpected arguments -c 'print(1)'"
    assert "hint: put Python's arguments after --, e.g. wasmbuild run ART -- -c 'print(1)'" in err
    assert fake_run == [] and not (tmp_path / "c").exists()
    code, err = run_main(capsys, "run", "art", "script.py")
    assert code == 2 and error_line(err) == "error: run: unexpected argument script.py"


def test_run_without_arguments_needs_no_double_dash(tmp_path, fake_run):
    assert cli.main(["run", "--cache-dir", str(tmp_path), "art"]) == 0
    assert fake_run[0]["args"] == []


def test_run_unknown_option_before_double_dash(capsys, tmp_path, fake_run):
    code, err = run_main(capsys, "run", "art", "--bogus", "--", "-c", "1")
    assert code == 2
    assert error_line(err) == "error: run: unknown option before --: --bogus"
    assert fake_run == []


def test_run_without_an_artifact_is_argparses_usage_error(capsys, fake_run):
    code, err = run_main(capsys, "run", "--", "art", "-c", "1")
    assert code == 2 and "the following arguments are required: artifact" in err


def test_the_test_suites_worker_command_still_parses(tmp_path, fake_run):
    (tmp_path / "python.wasm").write_bytes(b"\0asm")
    cmd, _ = artifact_runtime(tmp_path).worker_command(tmp_path / "cache")
    assert cmd[1:4] == ["-m", "wasmbuild", "run"]
    assert cli.main([*cmd[3:], "-m", "test.regrtest", "--worker", "{}"]) == 0
    (call,) = fake_run
    assert call["artifact"] == tmp_path
    assert call["dirs"] == [(Path("/"), "/")]
    assert call["args"] == ["-m", "test.regrtest", "--worker", "{}"]
    assert call["limits"] == ({"private_lib": True} if "--private-lib" in cmd else {})


def test_the_readme_and_bench_forms_parse(tmp_path, fake_run):
    assert cli.main(["run", "dist/a.tar.gz", "--", "-c", "import sys; print(sys.platform)"]) == 0
    assert cli.main(["run", "--cache-dir", str(tmp_path), "a.tar.gz", "--", "-c", "pass"]) == 0  # bench.py
    assert cli.main(["run", "--env", "WB_PROBE=yes", "a.tar.gz", "--", "-c", "x"]) == 0  # integration tests
    assert [c["args"] for c in fake_run] == [["-c", "import sys; print(sys.platform)"], ["-c", "pass"], ["-c", "x"]]
    assert fake_run[2]["env"] == {"WB_PROBE": "yes"}


def test_other_commands_still_reject_unknown_arguments(capsys):
    code, err = run_main(capsys, "versions", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err


def test_help_returns_zero(capsys):
    assert cli.main(["run", "--help"]) == 0
    assert "--max-memory" in capsys.readouterr().out


# --- 13. run --dir and --env values -----------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["--dir", ""], "error: --dir '': empty host directory"),
    (["--dir", "/tmp::"], "error: --dir '/tmp::': empty guest path after '::'"),
    (["--dir", "::/guest"], "error: --dir '::/guest': empty host directory"),
    (["--env", "=v"], "error: --env '=v': empty variable name"),
    (["--env", "A\0B=v"], "error: --env 'A\\x00B=v': an environment variable cannot contain a NUL character"),
    (["--env", "A=v\0w"], "error: --env 'A=v\\x00w': an environment variable cannot contain a NUL character"),
    (["--env", "novalue"], "error: --env 'novalue': expected NAME=VALUE"),
])
def test_bad_dir_and_env_values_are_usage_errors(capsys, tmp_path, fake_run, argv, message):
    code, err = run_main(capsys, "run", "--cache-dir", str(tmp_path / "c"), *argv, "art", "--", "-c", "1")
    assert code == 2
    assert error_line(err) == message
    assert fake_run == [] and not (tmp_path / "c").exists()  # nothing run, no cache made


# --- 14. run --timeout and --max-memory ------------------------------------------------------------------------


def test_timeout_and_max_memory_are_passed_only_when_given(tmp_path, fake_run, monkeypatch):
    base = ["run", "--cache-dir", str(tmp_path), "art"]
    assert cli.main([*base, "--timeout", "2.5", "--max-memory", "512M", "--", "-c", "1"]) == 0
    assert cli.main([*base, "--timeout", "30", "--"]) == 0
    assert cli.main([*base, "--max-memory", "1GiB", "--"]) == 0
    assert cli.main([*base, "--private-lib", "--"]) == 0
    assert [c["limits"] for c in fake_run] == [{"timeout": 2.5, "max_memory": 512 << 20}, {"timeout": 30.0},
                                               {"max_memory": 1 << 30}, {"private_lib": True}]

    def old_run_artifact(artifact, args, cache_root, *, dirs=None, env=None, node=None):  # without the limits
        return 0

    monkeypatch.setattr(artifact, "run_artifact", old_run_artifact)
    assert cli.main([*base, "--", "-c", "1"]) == 0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", ""])
def test_timeout_must_be_a_positive_number(capsys, fake_run, value):
    code, err = run_main(capsys, "run", "art", f"--timeout={value}", "--")
    assert code == 2
    assert "argument --timeout: expected a " in error_line(err)
    assert fake_run == []


@pytest.mark.parametrize("value", ["0", "0K", "-1M", "12X", "1.5.2M", "M", "", "512MB", "0.1"])
def test_max_memory_must_be_a_positive_size(capsys, fake_run, value):
    code, err = run_main(capsys, "run", "art", f"--max-memory={value}", "--")
    assert code == 2
    assert "argument --max-memory: expected a " in error_line(err)
    assert fake_run == []


@pytest.mark.parametrize(("text", "size"), [
    ("1", 1), ("1048576", 1 << 20), ("1K", 1024), ("1k", 1024), ("4KiB", 4096), ("512M", 512 << 20),
    ("512MiB", 512 << 20), ("2G", 2 << 30), ("2gib", 2 << 30), ("1.5G", 3 << 29), (" 64 M ", 64 << 20),
])
def test_parse_size(text, size):
    assert cli.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "0G", "-5", "5 T", "5TB", "1e3", "K", "1,5G", "0.4"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        cli.parse_size(text)


# --- 7 and 8 through the command line -------------------------------------------------------------------------


@pytest.fixture
def stray_root(tmp_path):
    """A copy of the repository's data directories with stray files in recipes/."""
    root = tmp_path / "root"
    root.mkdir()
    for d in ("toolchains", "patches"):
        (root / d).symlink_to(ROOT / d)
    (root / "tests").symlink_to(ROOT / "tests")
    (root / "recipes").mkdir()
    for file in (ROOT / "recipes").glob("*.yaml"):
        (root / "recipes" / file.name).write_bytes(file.read_bytes())
    some = sorted((ROOT / "recipes").glob("cpython-*.yaml"))[0]
    for stray in ("cpython-banana.yaml", "cpython-3.13.0.yaml"):
        (root / "recipes" / stray).write_bytes(some.read_bytes())
    return root


def test_versions_lists_every_valid_recipe_and_warns_about_strays(capsys, monkeypatch, stray_root):
    monkeypatch.setenv("WASMBUILD_ROOT", str(stray_root))
    code = cli.main(["versions"])
    out, err = capsys.readouterr()
    assert code == 0, err
    listed = [line.split(":")[0] for line in out.splitlines()]
    expected = [yaml.safe_load(f.read_text())["version"] for f in available_recipes(ROOT).values()]
    assert listed == expected and len(listed) >= 2
    assert err.count("warning: ignoring recipes/cpython-banana.yaml: not named cpython-X.Y.yaml\n") == 1
    assert err.count("warning: ignoring recipes/cpython-3.13.0.yaml: not named cpython-X.Y.yaml\n") == 1


def test_matrix_runs_every_valid_recipe_despite_strays(capsys, tmp_path, monkeypatch, stray_root):
    monkeypatch.setenv("WASMBUILD_ROOT", str(stray_root))
    built = []

    def fake_build(ctx, target):
        built.append((ctx.recipe.version, target.name))
        archive = tmp_path / "dist" / f"{ctx.recipe.version}-{target.name}.tar.gz"
        archive.parent.mkdir(exist_ok=True)
        archive.write_bytes(b"x")
        return SimpleNamespace(archive=archive, build_python=SimpleNamespace(python=tmp_path / "python"),
                               record=SimpleNamespace(to_json=lambda: {}))

    def fake_suite(*args, **kwargs):
        return SimpleNamespace(selection="all", counts=dict.fromkeys(regrtest.STATUSES, 0), check=lambda: None)

    smoked = []
    monkeypatch.setattr("wasmbuild.release.matrix.write_release", lambda dist, released: dist / "release.json")
    monkeypatch.setattr("wasmbuild.release.matrix.smoke_test",
                        lambda archive, cache_root, recipe, options: smoked.append((recipe.version, options.name)))
    monkeypatch.setattr(pipeline, "build", fake_build)
    monkeypatch.setattr(regrtest, "run_suite", fake_suite)
    code = cli.main(["matrix", "--cache-dir", str(tmp_path / "cache"), "--report-dir", str(tmp_path / "reports"),
                     "--dist-dir", str(tmp_path / "dist")])
    assert code == 0, capsys.readouterr().err
    versions = [yaml.safe_load(f.read_text())["version"] for f in available_recipes(ROOT).values()]
    assert sorted({v for v, _ in built}, key=lambda v: [int(p) for p in v.split(".")]) == versions
    assert smoked == built  # the matrix smoke-tests every artifact it built
    rows = json.loads((tmp_path / "reports" / "matrix.json").read_text())["rows"]
    assert all(r["result"] == "ok" for r in rows)


def test_wrong_wasmbuild_root_through_the_cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WASMBUILD_ROOT", str(tmp_path))
    code, err = run_main(capsys, "versions")
    assert code == 2
    assert error_line(err) == f"error: WASMBUILD_ROOT={tmp_path}: has no recipes/ and toolchains/ directories"


def test_a_bad_recipe_is_one_error_line_through_the_cli(capsys, monkeypatch, stray_root):
    data = yaml.safe_load((stray_root / "recipes" / "cpython-3.13.yaml").read_text())
    bad = copy.deepcopy(data)
    bad["targets"] = {}
    (stray_root / "recipes" / "cpython-3.13.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.setenv("WASMBUILD_ROOT", str(stray_root))
    code, err = run_main(capsys, "versions")
    assert code == 3
    assert error_line(err).endswith("cpython-3.13.yaml: targets: the recipe defines no targets")
    assert "Traceback" not in err


def test_build_commands_check_the_host_tools_first_and_name_every_missing_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CC", raising=False)
    cache_dir = tmp_path / "cache"
    assert cli.main(["build", "--target", "emscripten", "--cache-dir", str(cache_dir)]) == 5
    err = capsys.readouterr()
    text = err.out + err.err
    assert "4 host tool(s) missing" in text and all(f"- {t}:" in text for t in ("cc", "make", "patch", "perl"))
    assert not cache_dir.exists()  # checked before anything is written


def test_builds_wait_for_the_cache_lock(monkeypatch, tmp_path):
    seen = []
    real = cli.cache.lock

    def lock(root, name="wasmbuild", *, wait=False):
        seen.append(wait)
        return real(root, name, wait=wait)

    monkeypatch.setattr(cli.cache, "lock", lock)
    monkeypatch.setattr("wasmbuild.targets.get_target", lambda name: (_ for _ in ()).throw(cli.UsageError("stop here")))
    monkeypatch.setattr("wasmbuild.toolchain.hosttools.preflight", lambda target: None)
    assert cli.main(["toolchain", "--cache-dir", str(tmp_path / "c")]) == 2
    assert seen == [True]


# --- the web variant ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "message"), [
    (["build", "--variant", "web"], "error: --variant web: the wasi target has no variants"),
    (["build", "--target", "wasi", "--variant", "node"], "error: --variant node: the wasi target has no variants"),
])
def test_a_variant_of_a_target_without_variants_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch,
                                                                                     argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "build", lambda *a, **k: pytest.fail("nothing may be built"))
    monkeypatch.setattr("wasmbuild.toolchain.hosttools.preflight", lambda target: None)
    code, err = run_main(capsys, *argv, "--cache-dir", str(tmp_path / "cache"))
    assert code == 2 and error_line(err) == message
    assert "hint: --variant applies to: emscripten (node, web)" in err
    assert list(tmp_path.iterdir()) == []  # no cache, no dist/


def test_build_hands_the_variant_to_the_pipeline(capsys, tmp_path, monkeypatch):
    seen, smoked = [], []
    monkeypatch.setattr(pipeline, "build", lambda ctx, target: seen.append((ctx.target.name, target)) or
                        SimpleNamespace(archive=tmp_path / "a.tar.gz"))
    monkeypatch.setattr("wasmbuild.checks.smoke.smoke_test",
                        lambda archive, cache_root, recipe, options: smoked.append((archive, options.name)))
    monkeypatch.setattr("wasmbuild.toolchain.hosttools.preflight", lambda target: None)
    for variant in ([], ["--variant", "node"], ["--variant", "web"]):
        assert cli.main(["build", "--target", "emscripten", *variant, "--cache-dir", str(tmp_path / "c"),
                         "--dist-dir", str(tmp_path / "d")]) == 0
    assert seen == [("emscripten", get_target("emscripten")), ("emscripten", get_target("emscripten")),
                    ("emscripten", get_target("emscripten", "web"))]
    # The build command, not the pipeline, smoke-tests what it built, unless told not to.
    assert smoked == [(tmp_path / "a.tar.gz", "emscripten")] * 3
    assert cli.main(["build", "--target", "emscripten", "--no-smoke-test", "--cache-dir", str(tmp_path / "c"),
                     "--dist-dir", str(tmp_path / "d")]) == 0
    assert len(seen) == 4 and len(smoked) == 3
    with pytest.raises(SystemExit):
        cli._parser().parse_args(["build", "--target", "emscripten", "--variant", "browser"])
