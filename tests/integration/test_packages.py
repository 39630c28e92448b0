"""`wasmbuild install` for real: attrs, jinja2 with MarkupSafe's compiled _speedups, msgpack with its C extension
(tests/packages/requirements.txt, every file pinned by sha256) into the WASI and the Emscripten artifacts; each
package's own test suite from its sdist run with pytest inside the artifact, ending as
tests/packages/expectations/<package>-<target>.yaml says; a bundle of a Jinja2 app with no preopened directory;
the same inputs giving the same bytes; bad input giving one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import ROOT, wasmbuild

DATA = ROOT / "tests" / "packages"
SUITES = yaml.safe_load((DATA / "suites.yaml").read_text())
TARGETS = {"wasi": "cpython-3.13.15-wasm32-wasip1.tar.gz", "emscripten": "cpython-3.13.15-wasm32-emscripten.tar.gz"}
RESULT = "WASMBUILD-SUITE-RESULT "
# Runs inside the artifact: pytest with what WASI and Emscripten lack turned off (fd-level capture needs os.dup,
# faulthandler and the cache provider write where the guest may not), failures collected by a plugin.
RUNNER = """import json, os, sys
os.chdir({root!r})
CHECK = {check!r}
exec(CHECK)
import pytest

class Collect:
    def __init__(self):
        self.failed, self.counts = [], {{}}

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)
        if report.when == "call" or report.outcome != "passed":
            key = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            self.counts[key] = self.counts.get(key, 0) + 1

collect = Collect()
status = pytest.main(["-p", "no:cacheprovider", "-p", "no:faulthandler", "-p", "no:logging", "--capture=sys",
                      "-q", "-p", "no:randomly", *sys.argv[1:]], plugins=[collect])
print({marker!r} + json.dumps({{"status": int(status), "failed": sorted(set(collect.failed)),
                                "counts": collect.counts}}))
"""


def pip_index_args() -> list[str]:
    from wasmbuild.packages.tools import configured_index

    url = configured_index()
    return ["--index-url", url] if url else []


@pytest.fixture(scope="session")
def sdists(tmp_path_factory) -> dict[str, Path]:
    """Each suite's sdist, fetched with pip (--isolated: the machine's constraints do not apply), checked against
    its sha256, unpacked: package -> its top directory."""
    where = tmp_path_factory.mktemp("sdists")
    out = {}
    for name, suite in SUITES.items():
        version = suite["sdist"].rsplit("-", 1)[1].removesuffix(".tar.gz")
        subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--disable-pip-version-check", "-q",
                        "--no-deps", "--no-binary", ":all:", *pip_index_args(), "-d", str(where),
                        f"{name}=={version}"], check=True, stdin=subprocess.DEVNULL)
        sdist = where / suite["sdist"]
        assert hashlib.sha256(sdist.read_bytes()).hexdigest() == suite["sha256"], f"{sdist.name}: sha256 differs"
        with tarfile.open(sdist) as tar:
            tar.extractall(where, filter="data")
        out[name] = where / suite["sdist"].removesuffix(".tar.gz")
    return out


def install(archive: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return wasmbuild("install", str(archive), "-r", str(DATA / "requirements.txt"), "--require-hashes", "-o", str(out),
                     *extra)


@pytest.fixture(scope="session")
def installed(request, tmp_path_factory) -> dict[str, Path]:
    """target -> the artifact (.tar.gz) with the packages installed."""
    return {}


def installed_artifact(target: str, request, tmp_path_factory, installed: dict[str, Path]) -> Path:
    if target not in installed:
        dist = request.getfixturevalue("wasi_dist" if target == "wasi" else "em_dist")
        out = tmp_path_factory.mktemp(f"installed-{target}") / f"{target}-packages.tar.gz"
        proc = install(dist / TARGETS[target], out)
        sys.stderr.write(proc.stderr[-3000:])
        installed[target] = out
    return installed[target]


def run_suite(artifact: Path, target: str, src: Path, package: str) -> dict:
    suite = SUITES[package]
    expect = yaml.safe_load((DATA / "expectations" / f"{package}-{target}.yaml").read_text())
    # The runner lives outside the sdist: its directory is sys.path[0], and an sdist's own package directory there
    # (msgpack's) would shadow the installed package with its pure-Python sources.
    runner_dir = src.parent / f"runner-{package}"
    runner_dir.mkdir(exist_ok=True)
    runner = runner_dir / "wasmbuild_suite.py"
    runner.write_text(RUNNER.format(check=suite["check"], marker=RESULT, root="/src" if target == "wasi" else str(src)))
    args = [suite["tests"], *(a for path in expect["ignore"] for a in ("--ignore", path))]
    if target == "wasi":
        cmd = ["run", str(artifact), "--dir", f"{src}::/src", "--dir", f"{runner_dir}::/runner", "--",
               "/runner/wasmbuild_suite.py", *args]
    else:
        cmd = ["run", str(artifact), "--", str(runner), *args]
    proc = wasmbuild(*cmd, cwd=src, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    assert lines, (f"no result from {package}'s suite (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                   f"{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(RESULT):])
    unexpected = sorted(set(result["failed"]) - set(expect["fail"]))
    fixed = sorted(set(expect["fail"]) - set(result["failed"]))
    assert not unexpected, f"{package} on {target}: unexpected failures {unexpected}\n{proc.stdout[-4000:]}"
    assert not fixed, f"{package} on {target}: expected to fail but passed (update the expectations): {fixed}"
    assert result["status"] in (0, 1) and result["counts"].get("passed", 0) > 0, result
    sys.stderr.write(f"{package} on {target}: {result['counts']}\n")
    return result


@pytest.mark.parametrize("target", ["wasi", "emscripten"])
@pytest.mark.parametrize("package", list(SUITES))
def test_package_suite(package, target, sdists, request, tmp_path_factory, installed):
    artifact = installed_artifact(target, request, tmp_path_factory, installed)
    run_suite(artifact, target, sdists[package], package)


def test_installed_record_names_every_package(request, tmp_path_factory, installed):
    artifact = installed_artifact("wasi", request, tmp_path_factory, installed)
    with tarfile.open(artifact) as tar:
        first = next(m for m in tar if m.isfile())
        assert first.name.endswith("/BUILD.json")  # the record first, as in every wasmbuild archive
        record = json.loads(tar.extractfile(first).read())
    packages = {p["name"]: p for p in record["artifact"]["packages"]}
    assert {"attrs", "Jinja2", "MarkupSafe", "msgpack", "pytest"} <= set(packages)
    assert packages["MarkupSafe"]["built_from_sdist"]["build_requires"] == ["setuptools==84.2.1"]
    assert packages["MarkupSafe"]["wheel"] == "markupsafe-3.0.4-cp313-cp313-wasi_0_0_0_wasm32.whl"
    assert packages["MarkupSafe"]["extension_modules"] == ["markupsafe._speedups"]
    linked = {m["name"]: m for m in record["artifact"]["linked_modules"]}
    assert set(linked) == {"markupsafe._speedups", "msgpack._cmsgpack"}
    assert all(m["file"] == "python.wasm" and m["object"].endswith(f"/modules/{n}.o") for n, m in linked.items())
    sbom = json.loads(artifact.with_name(artifact.name.removesuffix(".tar.gz") + ".cdx.json").read_text())
    purls = {c.get("purl", "").split("?")[0] for c in sbom["components"]}
    assert "pkg:pypi/markupsafe@3.0.4" in purls and "pkg:pypi/attrs@26.1.0" in purls


def test_the_same_install_gives_the_same_bytes(request, tmp_path_factory, installed, tmp_path):
    first = installed_artifact("wasi", request, tmp_path_factory, installed)
    again = tmp_path / first.name
    install(request.getfixturevalue("wasi_dist") / TARGETS["wasi"], again)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(first.read_bytes()).digest()


def test_a_bundle_of_a_jinja_app_runs_with_no_directory(request, tmp_path):
    """bundle -r: Jinja2 and MarkupSafe (its _speedups linked into the bundle) installed on the way."""
    artifact = request.getfixturevalue("wasi_dist") / TARGETS["wasi"]
    requirements = tmp_path / "requirements.txt"
    pinned = (DATA / "requirements.txt").read_text().split("\n")
    keep = ("Jinja2==", "MarkupSafe==")
    requirements.write_text("".join(f"{line}\n{pinned[i + 1]}\n" for i, line in enumerate(pinned)
                                    if line.startswith(keep)))
    app = tmp_path / "app.py"
    app.write_text("import sys\nimport jinja2, markupsafe\n"
                   "env = jinja2.Environment(autoescape=True)\n"
                   "page = env.from_string('<p>Hello {{ name }}</p>{% for i in items %}[{{ i }}]{% endfor %}')\n"
                   "print(page.render(name=sys.argv[1], items=range(3)))\n"
                   "print(markupsafe._escape_inner.__module__, jinja2.__version__)\n")
    out = tmp_path / "app.wasm"
    wasmbuild("bundle", str(app), "--artifact", str(artifact), "-r", str(requirements), "-o", str(out))
    proc = wasmbuild("run", str(out), "--", "<b>&", cwd=tmp_path)
    assert proc.stdout.splitlines() == ["<p>Hello &lt;b&gt;&amp;</p>[0][1][2]", "markupsafe._speedups 3.1.6"]


def test_bad_requirements_are_one_line(request, tmp_path):
    archive = request.getfixturevalue("wasi_dist") / TARGETS["wasi"]
    out = tmp_path / "out"
    cases = [
        (["wasmbuild-no-such-package-xyz"], 14, "Could not find a version that satisfies"),
        (["attrs==26.1.0", "attrs==25.4.0"], 14, "conflict"),
    ]
    for reqs, code, words in cases:
        proc = wasmbuild("install", str(archive), *reqs, "-o", str(out), check=False)
        assert proc.returncode == code, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert not out.exists() and not list(tmp_path.glob(".out.*"))
    bad_hash = tmp_path / "req.txt"
    bad_hash.write_text("attrs==26.1.0 --hash=sha256:" + "0" * 64 + "\n")
    proc = wasmbuild("install", str(archive), "-r", str(bad_hash), "-o", str(out), check=False)
    assert proc.returncode == 4 and "hash" in proc.stderr.lower() and "Traceback" not in proc.stderr
    # a requirement whose markers exclude the target is reported, not dropped in silence
    proc = wasmbuild("install", str(archive), "attrs==26.1.0", "iniconfig; sys_platform == 'linux'", "-o", str(out))
    assert "not for this target, left out: iniconfig" in proc.stderr
    assert os.path.isdir(out / "lib" / "python3.13" / "site-packages" / "attrs")
    assert not (out / "lib" / "python3.13" / "site-packages" / "iniconfig").exists()
