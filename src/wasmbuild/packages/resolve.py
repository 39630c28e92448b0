"""Resolving requirements for an artifact's interpreter: pip's resolver (never one of ours) run under
pip_for_target.py, which makes pip see the artifact's platform. The artifact is asked what it is
(`target_facts`: it runs and answers), pip answers with an installation report (`--dry-run --report`): every
distribution with its name, version, file URL and sha256. Requirements whose markers exclude the target are
reported (pip's "Ignoring" lines), never dropped in silence.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wasmbuild import log
from wasmbuild.artifact import run_python
from wasmbuild.errors import BuildError, ChecksumError, PackageError, UsageError, WasmbuildError
from wasmbuild.packages.tools import Index, ToolEnv
from wasmbuild.process import capture
from wasmbuild.toolchain.node import pinned_node_finder

RESOLVE_TIMEOUT = 900  # s: pip resolving (it may build metadata of sdists)

# What the artifact's interpreter says about itself: what pip's markers and tags are computed from.
FACTS_CODE = """import json, os, platform, sys, sysconfig
print(json.dumps({"sys_platform": sys.platform, "os_name": os.name, "platform_system": platform.system(),
 "platform_machine": platform.machine(), "platform_release": platform.release(),
 "platform_version": platform.version(), "platform": sysconfig.get_platform(),
 "multiarch": getattr(sys.implementation, "_multiarch", ""), "python": platform.python_version(),
 "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"), "cache_tag": sys.implementation.cache_tag}))
"""


def target_facts(root: Path, cache_root: Path) -> dict[str, str]:
    """Run the unpacked artifact at `root` and return what it says it is (FACTS_CODE)."""
    with tempfile.TemporaryDirectory(prefix="wasmbuild-facts-") as work:
        out, err = Path(work) / "out", Path(work) / "err"
        status = run_python(root, ["-I", "-c", FACTS_CODE], cache_root, [(Path(work), "/")], stdout=out,
                            stderr=err, timeout=120, node=pinned_node_finder(cache_root))
        if status != 0:
            raise BuildError(f"the artifact at {root} did not answer what platform it is (exit {status}): "
                             f"{err.read_text(errors='replace').strip()[-1000:]}")
        return json.loads(out.read_text())


def wheel_tag_platform(facts: dict[str, str]) -> str:
    """The platform part of a wheel tag for the artifact: emscripten_3_1_69_wasm32, wasi_0_0_0_wasm32."""
    return re.sub(r"[^A-Za-z0-9]", "_", facts["platform"])


@dataclass(frozen=True)
class Pin:
    """One distribution pip chose: from the report's `install` list."""

    name: str
    version: str
    url: str
    sha256: str
    filename: str
    requested: bool
    requires_python: str | None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "file": self.filename, "sha256": self.sha256,
                "url": self.url, "requested": self.requested}


@dataclass(frozen=True)
class Resolution:
    pins: list[Pin]
    ignored: list[str]  # requirements whose markers exclude the target (pip's own words)

    def report(self) -> None:
        """Say what pip chose, and what it left out for the target (never dropped in silence)."""
        for line in self.ignored:
            log.warn(f"not for this target, left out: {line}")
        for pin in self.pins:
            log.info(f"  {pin.name} {pin.version}: {pin.filename}")


def parse_report(report: dict[str, Any]) -> list[Pin]:
    """The distributions of pip's installation report (format version 1)."""
    if str(report.get("version")) != "1":
        raise BuildError(f"pip wrote an installation report of format {report.get('version')!r}; expected 1")
    pins = []
    for item in report.get("install") or []:
        meta, info = item["metadata"], item["download_info"]
        url = info["url"]
        hashes = (info.get("archive_info") or {}).get("hashes") or {}
        sha = hashes.get("sha256")
        if not sha and (h := (info.get("archive_info") or {}).get("hash", "")).startswith("sha256="):
            sha = h.split("=", 1)[1]
        if not sha:
            raise ChecksumError(f"{meta['name']} {meta['version']}: the index gave no sha256 for {url}",
                                hint="use an index that publishes sha256 hashes (PEP 503/691), or pin with --hash")
        pins.append(Pin(meta["name"], meta["version"], url, sha, url.rsplit("/", 1)[-1].split("#", 1)[0],
                        bool(item.get("requested")), meta.get("requires_python")))
    return sorted(pins, key=lambda p: p.name.lower())


IGNORED = re.compile(r"Ignoring (\S+): markers '(.*)' don't match your environment")
PIP_ERROR = re.compile(r"^ERROR: (.*)$", re.M)
RUST_SIGNS = re.compile(r"\b(maturin|setuptools[-_]rust|cargo metadata|rustc)\b")


def pip_failure(output: str, what: str) -> WasmbuildError:
    """One error for a failed pip run, saying what pip said."""
    errors = PIP_ERROR.findall(output)
    first = errors[0] if errors else (output.strip().splitlines() or ["(no output)"])[-1]
    text = " ".join(errors)
    if "THESE PACKAGES DO NOT MATCH THE HASHES" in output or "Expected sha256" in output:
        return ChecksumError(f"{what}: a downloaded file does not match its --hash: {first}",
                             hint="fix the hash in the requirements file, or the pinned version")
    rust = RUST_SIGNS.search(output)
    if rust and ("Failed to build" in output or "subprocess-exited-with-error" in output):
        return PackageError(f"{what}: a package (or one of its build requirements) needs Rust to build "
                            f"({rust.group(0)}): wasmbuild builds C and C++ extensions only; {first}",
                            hint="pin a version that publishes a pure-Python wheel (pip's --prefer-binary picks "
                                 "one), or leave the package out")
    if "No matching distribution found" in text or "Could not find a version" in text:
        return PackageError(f"{what}: {first}", hint="check the name and version on the index; only pure-Python "
                                                     "wheels and sdists can serve a WebAssembly target")
    if "ResolutionImpossible" in output or "conflict" in text.lower():
        return PackageError(f"{what}: the requirements conflict: {first}",
                            hint="relax or align the version pins named above")
    if "Hashes are required" in output or "--require-hashes" in text:
        return ChecksumError(f"{what}: {first}", hint="give every requirement (and its dependencies) a --hash, "
                                                      "or drop --require-hashes")
    return PackageError(f"{what}: pip failed: {first}", hint="see pip's full output above in the log")


def resolve(env: ToolEnv, facts: dict[str, str], requirements: list[str], requirement_files: list[Path],
            index: Index, *, sysconfig_data: Path, require_hashes: bool, log_file: Path,
            prefer_binary: bool = False) -> Resolution:
    """pip's resolution of the requirements for the artifact described by `facts` (`sysconfig_data`: its
    _sysconfigdata_*.py)."""
    if not requirements and not requirement_files:
        raise UsageError("nothing to install", hint="name packages (wasmbuild install ART attrs jinja2) or -r FILE")
    for f in requirement_files:
        if not f.is_file():
            raise UsageError(f"-r {f}: no such requirements file")
    shim = resources.files("wasmbuild.packages").joinpath("pip_for_target.py")
    with tempfile.TemporaryDirectory(prefix="wasmbuild-resolve-") as work:
        facts_file, report = Path(work) / "target.json", Path(work) / "report.json"
        (Path(work) / "sysconfig").mkdir()
        shutil.copy(sysconfig_data, Path(work) / "sysconfig" / sysconfig_data.name)
        facts_file.write_text(json.dumps({**facts, "sysconfig_dir": str(Path(work) / "sysconfig"),
                                          "sysconfig_name": sysconfig_data.stem}))
        argv = [str(env.python), str(shim), str(facts_file), "--isolated", "--disable-pip-version-check",
                "install", "--dry-run", "--ignore-installed", "--target", str(Path(work) / "target"),
                "--report", str(report), "--no-input", "--progress-bar", "off", *index.pip_args(),
                *(["--require-hashes"] if require_hashes else []), *(["--prefer-binary"] if prefer_binary else []),
                *(a for f in requirement_files for a in ("-r", str(f))), *requirements]
        try:
            proc = capture(argv, timeout=RESOLVE_TIMEOUT, env=None)
        except subprocess.TimeoutExpired:
            raise PackageError(f"pip did not finish resolving within {RESOLVE_TIMEOUT} s") from None
        output = f"{proc.stdout}\n{proc.stderr}"
        with open(log_file, "a") as out:
            out.write(f"\n$ {' '.join(argv)}\n{output}\n")
        what = f"resolving {' '.join([*requirements, *(f'-r {f}' for f in requirement_files)])}"
        if proc.returncode != 0 or not report.is_file():
            raise pip_failure(output, what)
        pins = parse_report(json.loads(report.read_text()))
    ignored = [f"{m.group(1)} (markers: {m.group(2)})" for m in IGNORED.finditer(output)]
    return Resolution(pins, ignored)
