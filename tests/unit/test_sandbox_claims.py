"""Honest sandbox claims (issue 20, class 3): a node artifact is not a sandbox, so `wasmbuild run` refuses the
options that would promise confinement; the web variant is linked without dynamic execution, without a shell
and without script loading, and its cache entries change with that."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.test_targets import BUILD_TRIPLE, fake_host, fake_web_build, make_ctx

from wasmbuild import cli, pipeline
from wasmbuild.cli import run as cli_run
from wasmbuild.targets import emscripten_web, get_target

ROOT = Path(__file__).resolve().parents[2]


# --- 1. the node artifact: --dir and the other confining options are refused ------------------------------------


@pytest.fixture
def node_artifact(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A node (emscripten) artifact directory: python.js + python.wasm + lib/, and a stand-in for node that
    records that it ran (where, with which arguments)."""
    art = tmp_path / "cpython-3.13.15-wasm32-emscripten"
    (art / "lib" / "python3.13").mkdir(parents=True)
    (art / "python.js").write_text("// python.js\n")
    (art / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    ran = tmp_path / "node-ran"
    node = tmp_path / "node"
    node.write_text(f"#!/bin/sh\necho \"$PWD $*\" >> {shlex.quote(str(ran))}\n")
    node.chmod(0o755)
    monkeypatch.setattr(cli_run, "_pinned_node", lambda cache_root: lambda: node)
    return art, ran


@pytest.mark.parametrize("options", [
    ["--dir", "{data}"], ["--dir", "{data}::/data"], ["--dir", "{data}", "--timeout", "5"],
    ["--private-lib"], ["--max-memory", "256M"], ["--dir", "{data}::/", "--private-lib"],
])
def test_run_refuses_confinement_for_a_node_artifact_saying_why(node_artifact, tmp_path, capsys, options):
    art, ran = node_artifact
    data = tmp_path / "data"
    data.mkdir()
    argv = ["run", "--cache-dir", str(tmp_path / "cache"), *(o.format(data=data) for o in options), str(art), "--",
            "-c", "pass"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    line = lines[0]
    # What was refused, why (not a sandbox: the host's files, the user's rights), what to use instead.
    refused = line.removeprefix("error: ").split(": ")[0].split(", ")
    assert refused == [o for o in ("--dir", "--private-lib", "--max-memory") if o in options], line
    assert "not a sandbox" in line and "host's files" in line and "rights of the user" in line
    assert "WASI artifact" in line and "wasmtime" in line
    assert not ran.exists()  # node never started


def test_run_of_a_node_artifact_without_confining_options_still_runs(node_artifact, tmp_path, capsys,
                                                                     monkeypatch):
    art, ran = node_artifact
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli.main(["run", "--cache-dir", str(tmp_path / "cache"), "--timeout", "30", str(art), "--",
                     "-c", "pass"]) == 0
    where, *argv = ran.read_text().split()
    assert where == str(work) and argv[-3:] == [str(art / "python.js"), "-c", "pass"]


def test_the_refusal_through_python_m_wasmbuild(node_artifact, tmp_path):
    """As a user types it: one error line, exit 2, no traceback."""
    art, ran = node_artifact
    proc = subprocess.run([sys.executable, "-m", "wasmbuild", "run", "--cache-dir", str(tmp_path / "cache"),
                           "--dir", str(tmp_path), str(art), "--", "-c", "pass"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("error:") == 1 and "not a sandbox" in proc.stderr and "Traceback" not in proc.stderr
    assert not ran.exists()


@pytest.fixture(autouse=True)
def no_config_guess(monkeypatch):
    monkeypatch.setattr("wasmbuild.targets.base.build_triple", lambda src: BUILD_TRIPLE)
    monkeypatch.setattr("wasmbuild.targets.emscripten.build_triple", lambda src: BUILD_TRIPLE)


# --- 2. the web variant: no dynamic execution, no shell, no script loading -------------------------------------


NODE_LINK = ("/emsdk/emscripten/emcc -sSTACK_SIZE=16777216 -sMAIN_MODULE -O2 -g0 -sNODERAWFS -sEXIT_RUNTIME "
             "-sENVIRONMENT=node -sEXPORTED_RUNTIME_METHODS=ENV --pre-js=/w/wasmbuild-pre.js -o python.js "
             "Programs/python.o -ldl")


def test_the_web_link_has_no_dynamic_execution_and_replaces_system_and_script_loading(tmp_path):
    out, pre, lib = tmp_path / "python.mjs", [tmp_path / "p.js"], tmp_path / emscripten_web.WEB_JS_LIBRARY_NAME
    argv = emscripten_web.web_link_argv(shlex.split(NODE_LINK), out, pre, [lib])
    assert "-sDYNAMIC_EXECUTION=0" in argv
    # The JS library comes after Emscripten's own (user libraries are read last: their definitions win).
    assert argv[-1] == f"--js-library={lib}"
    text = emscripten_web.WEB_JS_LIBRARY
    assert "_emscripten_system: (command) => command ? -{{{ cDefs.ENOSYS }}} : 0," in text  # system(): no shell
    assert "_emscripten_system__postset: 'readBinary = undefined;'," in text  # dlopen: the module's files only
    for name in ("emscripten_async_run_script", "emscripten_async_load_script", "emscripten_async_wget",
                 "emscripten_async_wget_data", "emscripten_async_wget2", "emscripten_async_wget2_data",
                 "_emscripten_dlopen_js"):
        assert f"  {name}: () => abort('wasmbuild: {name} is disabled in the web variant'),\n" in text
    assert text.startswith("//") and text.rstrip().endswith("});") and "eval" not in text


def test_the_web_record_lists_the_flag_and_the_js_library(tmp_path, monkeypatch):
    ctx, host, _ = fake_web_build(tmp_path, monkeypatch)
    link = get_target("emscripten", "web").record_configure(host)["web_link"]
    assert "-sDYNAMIC_EXECUTION=0" in link["added"]
    assert link["js_library"] == [emscripten_web.WEB_JS_LIBRARY_NAME]
    assert link["web_js_library"] == emscripten_web.WEB_JS_LIBRARY


@pytest.mark.parametrize("change", ["flags", "js_library"])
def test_the_web_stage_key_changes_with_the_link(tmp_path, monkeypatch, change):
    """A staged tree holds the link's python.mjs: a stage cached with other link flags or another JS library
    (before -sDYNAMIC_EXECUTION=0) is not reused."""
    ctx, host, calls = fake_web_build(tmp_path, monkeypatch)
    web = get_target("emscripten", "web")
    staged = pipeline.stage(ctx, web, host)
    assert pipeline.stage(ctx, web, host).entry == staged.entry and len(calls) == 2
    before = emscripten_web.link_key_inputs()
    if change == "flags":
        monkeypatch.setattr(emscripten_web, "WEB_LDFLAGS",
                            tuple(f for f in emscripten_web.WEB_LDFLAGS if f != "-sDYNAMIC_EXECUTION=0"))
    else:
        monkeypatch.setattr(emscripten_web, "WEB_JS_LIBRARY", "// another JS library\n")
    assert emscripten_web.link_key_inputs() != before
    assert pipeline.stage(ctx, web, host).entry != staged.entry and len(calls) == 4


def test_the_link_cache_key_covers_the_flags_and_the_js_library(tmp_path, monkeypatch):
    """link(): the key hashes link_key_inputs (flags, the JS library text, its version), and the JS library is
    written into the link's entry and given to emcc with --js-library."""
    seen: list = []

    class Stop(Exception):
        pass

    def fake_node_link_argv(host, make_args, env, log_file):
        return shlex.split(NODE_LINK)

    def fake_run(argv, *, cwd, env, log_file, what):
        rsp = Path(argv[1].removeprefix("@"))
        seen.append(shlex.split(rsp.read_text()))
        raise Stop

    monkeypatch.setattr(emscripten_web, "node_link_argv", fake_node_link_argv)
    monkeypatch.setattr(emscripten_web, "run", fake_run)
    ctx = make_ctx(tmp_path, "emscripten")
    host = fake_host(tmp_path, ctx, "emscripten")
    pre = tmp_path / "pre.js"
    pre.write_text("// pre\n")
    with pytest.raises(Stop):
        emscripten_web.link(ctx, host, {}, [pre])
    (args,) = seen
    lib = Path(next(a for a in args if a.startswith("--js-library=")).removeprefix("--js-library="))
    assert lib.name == emscripten_web.WEB_JS_LIBRARY_NAME and "-sDYNAMIC_EXECUTION=0" in args
    # The failed link left no entry (cache.fresh_entry), so no stale JS library either.
    assert not lib.parent.exists()
