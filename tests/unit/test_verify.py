"""`wasmbuild verify`: an artifact against its record, BUILD.json, SHA256SUMS, release.json and SBOM beside it; the
rebuild comparison (with the build itself faked); the release index writer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from wasmbuild import cli
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.errors import ArchiveError, UsageError, VerifyError
from wasmbuild.files import write_json
from wasmbuild.release import index, verify
from wasmbuild.release.sums import update_sha256sums

NAME = "cpython-3.13.15-wasm32-wasip1"
WASM = b"\0asm\1\0\0\0 python"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record(wasm: bytes = WASM) -> dict:
    return {"format": 2, "wasmbuild": "0.1.0", "python": {"implementation": "cpython", "version": "3.13.15"},
            "target": {"name": "wasi", "triple": "wasm32-wasip1"}, "recipe": "cpython-3.13.yaml",
            "source_date_epoch": 1785932743,
            "inputs": [{"name": "Python-3.13.15.tar.xz", "role": "cpython-source", "url": "https://x/P.tar.xz",
                        "sha256": "a" * 64, "size": 1}],
            "toolchain": {"name": "wasi-sdk", "version": "25", "route": "debian", "inputs": []},
            "patches": [{"file": "p.patch", "sha256": "b" * 64}],
            "artifact": {"python.wasm": {"sha256": sha(wasm), "size": len(wasm)}, "dev": f"{NAME}-dev.tar.gz",
                         "debuginfo": None}}


def make_archive(out: Path, rec: dict, wasm: bytes = WASM, tmp: Path | None = None) -> None:
    tree = (tmp or out.parent) / f"tree-{out.name}"
    tree.mkdir(parents=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(tree / "BUILD.json", rec)
    (tree / "python.wasm").write_bytes(wasm)
    (tree / "lib").mkdir()
    write_deterministic_tar_gz(out, tree, NAME, rec["source_date_epoch"], first=["BUILD.json"])
    shutil.rmtree(tree)


def sbom(archive_sha: str, rec: dict) -> dict:
    comps = [{"name": i.get("name") or i["file"], "hashes": [{"alg": "SHA-256", "content": i["sha256"]}]}
             for i in [*rec["inputs"], *rec["patches"]]]
    return {"bomFormat": "CycloneDX", "metadata": {"component": {"name": NAME,
            "hashes": [{"alg": "SHA-256", "content": archive_sha}]}}, "components": comps}


@pytest.fixture
def release(tmp_path):
    """A dist/ as `nox -s release` leaves it: archive, -dev companion, BUILD.json, SBOM, release.json, SHA256SUMS."""
    dist = tmp_path / "dist"
    dist.mkdir()
    rec = record()
    make_archive(dist / f"{NAME}.tar.gz", rec, tmp=tmp_path)
    (dist / f"{NAME}-dev.tar.gz").write_bytes(b"dev archive")
    write_json(dist / f"{NAME}.BUILD.json", rec)
    archive_sha = sha((dist / f"{NAME}.tar.gz").read_bytes())
    write_json(dist / f"{NAME}.cdx.json", sbom(archive_sha, rec))
    entry = index.entry(dist, rec, f"{NAME}.tar.gz", {"selection": "ci subset", "passed": 1, "failed": 0,
                                                      "crashed": 0, "skipped": 0})
    index.write_index(dist, [entry], "c" * 40)
    update_sha256sums(dist)
    return dist


def test_the_index_entry_names_the_archive_its_record_and_companions(release):
    data = json.loads((release / "release.json").read_text())
    assert data["format"] == index.INDEX_FORMAT and data["wasmbuild"] == {"version": "0.1.0", "commit": "c" * 40}
    (e,) = data["artifacts"]
    assert (e["python"], e["target"], e["triple"], e["file"]) == ("3.13.15", "wasi", "wasm32-wasip1",
                                                                 f"{NAME}.tar.gz")
    assert e["sha256"] == sha((release / e["file"]).read_bytes())
    assert e["build_json_sha256"] == sha((release / f"{NAME}.BUILD.json").read_bytes())
    assert e["companions"] == [{"kind": "dev", "file": f"{NAME}-dev.tar.gz", "sha256": sha(b"dev archive"),
                                "size": 11}]
    assert e["sbom"] == f"{NAME}.cdx.json" and e["tests"]["passed"] == 1
    sums = (release / "SHA256SUMS").read_text()
    assert "  release.json\n" in sums and f"  {NAME}.cdx.json\n" in sums


def test_the_commit_comes_from_the_environment_or_git(monkeypatch, tmp_path):
    monkeypatch.setenv("WASMBUILD_COMMIT", "d" * 40)
    assert index.wasmbuild_commit(tmp_path) == "d" * 40
    monkeypatch.delenv("WASMBUILD_COMMIT")
    assert index.wasmbuild_commit(tmp_path) is None  # not a git checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    assert len(index.wasmbuild_commit(tmp_path) or "") == 40


def test_a_published_artifact_passes_every_check(release):
    report = verify.verify(release / f"{NAME}.tar.gz", rebuild=False)
    assert not report.failed and not report.skipped
    assert len(report.passed) == 8


def test_an_artifact_alone_is_checked_against_its_record_and_the_rest_is_said_to_be_unchecked(release, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(release / f"{NAME}.tar.gz", alone)
    with pytest.raises(verify.NotVerified) as info:  # checked, but not verified: see the test after this one
        verify.verify(alone / f"{NAME}.tar.gz", rebuild=False)
    report = info.value.report
    assert report.passed == ["python.wasm matches the record's sha256"]
    assert len(report.skipped) == 4 and all("not checked" in s for s in report.skipped)


def test_a_tampered_archive_fails_the_sums_the_index_and_the_sbom(release, tmp_path, capsys):
    # Another python.wasm, its record updated to match: only what is published beside it can tell.
    rec = record(b"\0asm\1\0\0\0 evil")
    (release / f"{NAME}.tar.gz").unlink()
    make_archive(release / f"{NAME}.tar.gz", rec, b"\0asm\1\0\0\0 evil", tmp=tmp_path)
    code = cli.main(["verify", str(release / f"{NAME}.tar.gz")])
    err = capsys.readouterr().err
    assert code == VerifyError.exit_code == 13
    for what in ("BUILD.json is the archive's BUILD.json", "SHA256SUMS lists", "release.json gives the archive's",
                 "describes this archive"):
        assert what in err
    assert "Traceback" not in err


def test_a_record_that_does_not_match_its_python_wasm_fails(release, tmp_path):
    rec = record()
    rec["artifact"]["python.wasm"]["sha256"] = "0" * 64
    make_archive(tmp_path / "x" / f"{NAME}.tar.gz", rec, tmp=tmp_path)
    with pytest.raises(VerifyError, match="python.wasm matches the record's sha256"):
        verify.verify(tmp_path / "x" / f"{NAME}.tar.gz", rebuild=False)


def test_an_sbom_missing_an_input_fails(release):
    data = json.loads((release / f"{NAME}.cdx.json").read_text())
    data["components"] = data["components"][:1]
    write_json(release / f"{NAME}.cdx.json", data)
    with pytest.raises(VerifyError, match=r"lists every input and patch of the record \(2\): 1 missing"):
        verify.verify(release / f"{NAME}.tar.gz", rebuild=False)


@pytest.mark.parametrize(("content", "message"), [
    (b"not a tarball", "not a readable archive"),
    (None, "its first file is not <top>/BUILD.json"),
])
def test_something_that_is_not_an_artifact_is_an_archive_error(tmp_path, capsys, content, message):
    path = tmp_path / "x.tar.gz"
    if content is None:
        tree = tmp_path / "t"
        tree.mkdir()
        (tree / "README").write_text("hi")
        write_deterministic_tar_gz(path, tree, "x", 0)
    else:
        path.write_bytes(content)
    assert cli.main(["verify", str(path)]) == ArchiveError.exit_code
    assert message in capsys.readouterr().err
    assert cli.main(["verify", str(tmp_path / "missing.tar.gz")]) == UsageError.exit_code


def test_the_rebuild_uses_the_records_version_target_and_toolchain_route(tmp_path):
    argv = verify.rebuild_argv(record(), tmp_path / "c", tmp_path / "d", ["--offline"])
    assert argv[1:] == ["-m", "wasmbuild", "build", "--target", "wasi", "--python", "3.13.15", "--cache-dir",
                        str(tmp_path / "c"), "--dist-dir", str(tmp_path / "d"), "--no-smoke-test",
                        "--toolchain-route", "debian", "--offline"]
    assert "debian" not in verify.rebuild_argv(record(), tmp_path, tmp_path, ["--toolchain-route", "release"])[:-2]


def fake_rebuild(monkeypatch, release, change: bool):
    """`wasmbuild build` faked: copies the published files into the rebuild's dist (one changed if asked)."""
    def run(argv, **kwargs):
        if argv[:4] == [argv[0], "-m", "wasmbuild", "build"]:
            dist = Path(argv[argv.index("--dist-dir") + 1])
            dist.mkdir(parents=True)
            for name in (f"{NAME}.tar.gz", f"{NAME}-dev.tar.gz"):
                shutil.copy(release / name, dist / name)
            if change:
                (dist / f"{NAME}-dev.tar.gz").write_bytes(b"other dev bytes")
            return subprocess.CompletedProcess(argv, 0)
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(verify.subprocess, "run", run)
    monkeypatch.setattr(verify.shutil, "which", lambda name: None)


def test_an_identical_rebuild_passes(release, monkeypatch):
    fake_rebuild(monkeypatch, release, change=False)
    report = verify.verify(release / f"{NAME}.tar.gz", rebuild=True)
    assert f"rebuild: {NAME}.tar.gz is byte-identical" in report.passed
    assert f"rebuild: {NAME}-dev.tar.gz is byte-identical" in report.passed


def test_a_differing_rebuild_names_the_file(release, monkeypatch, tmp_path):
    fake_rebuild(monkeypatch, release, change=True)
    with pytest.raises(VerifyError, match=f"rebuild: {NAME}-dev.tar.gz is byte-identical: it differs"):
        verify.verify(release / f"{NAME}.tar.gz", rebuild=True, keep=tmp_path / "kept")
    assert (tmp_path / "kept" / f"{NAME}-dev.tar.gz").read_bytes() == b"other dev bytes"


def test_a_record_naming_a_recipe_this_wasmbuild_lacks_cannot_be_rebuilt(tmp_path):
    rec = record()
    rec["python"]["version"] = "3.13.99"
    make_archive(tmp_path / f"{NAME}.tar.gz", rec)
    with pytest.raises(UsageError, match="no recipe cpython-3.13.yaml for CPython 3.13.99"):
        verify.verify(tmp_path / f"{NAME}.tar.gz", rebuild=True)


def test_compare_archives_lists_member_differences():
    a = verify.Contents("t", b"{}", {"t/a": "1", "t/b": "2", "t/c": "3"})
    b = verify.Contents("t", b"{}", {"t/a": "1", "t/b": "x", "t/d": "4"})
    assert verify.compare_archives(a, b) == ["t/b: content differs", "t/c: only in the given archive",
                                             "t/d: only in the rebuild"]
    assert verify.compare_archives(a, b, limit=1) == ["t/b: content differs", "... 2 more"]


def test_keep_without_rebuild_is_a_usage_error(release, capsys):
    assert cli.main(["verify", str(release / f"{NAME}.tar.gz"), "--keep", "x"]) == 2
    assert "--keep is for --rebuild" in capsys.readouterr().err


# --- nothing independent: not verified (issue 20, class 8) ------------------------------------------------------


@pytest.mark.parametrize("beside", [[], [f"{NAME}.BUILD.json"]], ids=["alone", "with-its-record"])
def test_an_altered_archive_with_nothing_independent_beside_it_is_not_verified(release, tmp_path, capsys, beside):
    # The standard library altered, python.wasm and the record untouched: the record cannot tell.
    alone = tmp_path / "alone"
    alone.mkdir()
    tree = tmp_path / "evil"
    tree.mkdir()
    write_json(tree / "BUILD.json", record())
    (tree / "python.wasm").write_bytes(WASM)
    (tree / "lib").mkdir()
    (tree / "lib" / "os.py").write_text("import evil\n")
    write_deterministic_tar_gz(alone / f"{NAME}.tar.gz", tree, NAME, 0, first=["BUILD.json"])
    for name in beside:
        shutil.copy(release / name, alone / name)
    code = cli.main(["verify", str(alone / f"{NAME}.tar.gz")])
    err = capsys.readouterr().err
    assert code == VerifyError.exit_code
    assert err.count("error: ") == 1 and "Traceback" not in err
    assert f"error: {NAME}.tar.gz: not verified: nothing beside it vouches for its bytes (no SHA256SUMS" in err
    assert "verify --rebuild" in err and "SHA256SUMS and release.json" in err
    assert "checks passed" not in err


def test_one_independent_check_is_enough_to_verify(release, tmp_path):
    some = tmp_path / "some"
    some.mkdir()
    for name in (f"{NAME}.tar.gz", "SHA256SUMS"):
        shutil.copy(release / name, some / name)
    report = verify.verify(some / f"{NAME}.tar.gz", rebuild=False)
    assert report.independent == [f"SHA256SUMS lists {NAME}.tar.gz with its sha256"]


def test_an_identical_rebuild_verifies_an_archive_alone(release, monkeypatch, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(release / f"{NAME}.tar.gz", alone)
    fake_rebuild(monkeypatch, release, change=False)
    report = verify.verify(alone / f"{NAME}.tar.gz", rebuild=True)
    assert report.independent == [f"rebuild: {NAME}.tar.gz is byte-identical"]


# --- documents of the wrong shape: one error, no traceback (issue 20, class 9) ----------------------------------


@pytest.mark.parametrize("sbom_doc", [
    [],
    {"metadata": []},
    {"metadata": {"component": "x"}},
    {"metadata": {"component": {"hashes": "abc"}}},
    {"metadata": {"component": {"hashes": ["abc"]}}},
    {"metadata": {"component": {"hashes": [{"alg": "SHA-256", "content": ["x"]}]}}},
    {"metadata": {"component": {"hashes": []}}, "components": {"a": 1}},
    {"metadata": {"component": {"hashes": []}}, "components": [{"hashes": [{"alg": "SHA-256", "content": {}}]}]},
])
def test_an_sbom_of_the_wrong_shape_is_a_failed_check(release, capsys, sbom_doc):
    write_json(release / f"{NAME}.cdx.json", sbom_doc)
    code = cli.main(["verify", str(release / f"{NAME}.tar.gz")])
    err = capsys.readouterr().err
    assert code == VerifyError.exit_code, err
    assert f"{NAME}.cdx.json is a CycloneDX SBOM: not readable as one" in err
    assert "Traceback" not in err and err.count("error: ") == 1


@pytest.mark.parametrize(("change", "problem"), [
    (lambda r: r.update(python="3.13.15"), "python: expected a mapping, got '3.13.15'"),
    (lambda r: r["target"].update(triple=["wasm32"]), "target.triple: expected a str"),
    (lambda r: r.update(artifact=None), "artifact: expected a mapping, got None"),
    (lambda r: r["artifact"].update({"python.wasm": "abc"}), "artifact.python.wasm: expected a mapping"),
    (lambda r: r["artifact"]["python.wasm"].update(sha256=1), "artifact.python.wasm.sha256: expected a str"),
    (lambda r: r.update(inputs={"a": 1}), "inputs: expected a list"),
    (lambda r: r.update(inputs=["x"]), "inputs[0]: expected a mapping"),
    (lambda r: r["patches"][0].update(sha256=[]), "patches[0].sha256: expected a str"),
    (lambda r: r["artifact"].update(dev="../x.tar.gz"), "artifact.dev: must be a plain file name"),
    (lambda r: r.update(toolchain="debian"), "toolchain: expected a mapping"),
])
def test_a_build_json_of_the_wrong_shape_is_one_error(tmp_path, capsys, change, problem):
    rec = record()
    change(rec)
    make_archive(tmp_path / "x" / f"{NAME}.tar.gz", rec, tmp=tmp_path)
    for argv in ([], ["--rebuild"]):
        code = cli.main(["verify", str(tmp_path / "x" / f"{NAME}.tar.gz"), *argv])
        err = capsys.readouterr().err
        assert code == ArchiveError.exit_code, err
        assert f"its BUILD.json is not a build record: {problem}" in err
        assert "Traceback" not in err and err.count("error: ") == 1


def test_a_build_json_that_is_not_an_object_is_one_error(tmp_path, capsys):
    make_archive(tmp_path / "x" / f"{NAME}.tar.gz", {"source_date_epoch": 0}, tmp=tmp_path)
    assert cli.main(["verify", str(tmp_path / "x" / f"{NAME}.tar.gz")]) == ArchiveError.exit_code
    assert "its BUILD.json is not a build record: python: expected a mapping, got None" in capsys.readouterr().err
