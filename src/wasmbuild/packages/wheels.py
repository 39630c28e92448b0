"""Wheels for an artifact: a pure wheel as it is; an sdist built into a wheel with PEP 517 on the host, in a venv
of its own holding its build requirements (pyproject.toml's [build-system], pinned by
recipes/packages/build-constraints.txt, binary only), in the artifact's cross-build environment (cross.py).

A wheel built from an sdist is cached under packages/wheels/ by the sdist's sha256, the cross-build environment
(toolchain, target platform, the artifact's headers and sysconfig) and the constraints: a second install does not
build again. It must come out pure, or with the artifact's platform tag (emscripten_3_1_69_wasm32,
wasi_0_0_0_wasm32); an sdist with C sources that comes out pure fell back to pure Python, refused unless the user
allows it. A build that hangs is stopped after a time limit; a failed build leaves no cache entry and names its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import safe_extract
from wasmbuild.download import Sources, fetch
from wasmbuild.errors import ArchiveError, BuildError, PackageError
from wasmbuild.packages.cross import CrossEnv
from wasmbuild.packages.resolve import Pin
from wasmbuild.packages.tools import Index, ToolEnv
from wasmbuild.process import capture
from wasmbuild.recipe import Download

WHEELS_VERSION = 1
BUILD_TIMEOUT = 1800  # s: one sdist's build
MAX_DIST_SIZE = 1 << 30  # bytes: the largest wheel or sdist fetched
C_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".m")
FORTRAN_SOURCES = (".f", ".f90", ".f95", ".f03", ".for")
RUST_BACKENDS = ("maturin", "setuptools-rust", "setuptools_rust")
WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-"
                        r"(?P<plat>[^-]+)\.whl$")


@dataclass(frozen=True)
class Wheel:
    """A wheel ready to install: the file, where it came from (the distribution pip chose) and, for one built
    from an sdist, how (build requirements as installed, the log)."""

    path: Path
    pin: Pin
    built: dict[str, Any] | None

    @property
    def pure(self) -> bool:
        return wheel_tags(self.path.name)[2] == "any"

    def record(self) -> dict[str, Any]:
        return {**self.pin.record(), "wheel": self.path.name, "wheel_sha256": cache.sha256_file(self.path),
                **({"built_from_sdist": self.built} if self.built else {})}


def wheel_tags(filename: str) -> tuple[str, str, str]:
    m = WHEEL_NAME.match(filename)
    if not m:
        raise PackageError(f"{filename}: not a wheel file name (PEP 427)")
    return m.group("py"), m.group("abi"), m.group("plat")


def fetch_dist(pin: Pin, cache_root: Path) -> Path:
    """The distribution pip chose, fetched into the download cache and verified by the sha256 the index (or the
    requirement's --hash) gave."""
    item = Download(url=pin.url, sha256=pin.sha256, filename=pin.filename, max_size=MAX_DIST_SIZE)
    return fetch(item, cache_root, Sources(upstream=True), primary_route="index").path


def wheel_metadata(path: Path) -> dict[str, list[str]]:
    """The METADATA headers of a wheel file (lower-case names, each with its values); {} when it has none."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            text = zf.read(names[0]).decode("utf-8", errors="replace") if len(names) == 1 else ""
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageError(f"{path.name}: not a readable wheel: {exc}") from None
    return metadata_headers(text)


def metadata_headers(text: str) -> dict[str, list[str]]:
    """A METADATA file's headers (the part before the first empty line): lower-case name -> values."""
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if ":" in line and not line.startswith((" ", "\t")):
            key, _, value = line.partition(":")
            headers.setdefault(key.strip().lower(), []).append(value.strip())
    return headers


def metadata_license(headers: dict[str, list[str]]) -> dict[str, str]:
    """{"license": ...} as a package's metadata states it (License-Expression, else a one-line License, else an
    OSI classifier), or nothing."""
    if headers.get("license-expression"):
        return {"license": headers["license-expression"][0]}
    if headers.get("license") and len(headers["license"][0]) < 80:
        return {"license": headers["license"][0]}
    for classifier in headers.get("classifier", []):
        if classifier.startswith("License :: OSI Approved :: "):
            return {"license": classifier.rsplit(" :: ", 1)[1]}
    return {}


def check_wheel_platform(path: Path, platform_tag: str, pin: Pin) -> None:
    """A wheel pip chose or a build made is pure or for the artifact's platform."""
    plat = wheel_tags(path.name)[2]
    if plat != "any" and platform_tag not in plat.split("."):
        raise PackageError(f"{pin.name} {pin.version}: {path.name} is for {plat}, not this artifact "
                           f"({platform_tag})", hint="the sdist's build did not cross-compile; see its log")


def _unpack_sdist(sdist: Path, dest: Path) -> Path:
    """The sdist's top directory, unpacked under `dest`."""
    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as zf:
                for name in zf.namelist():
                    if name.startswith("/") or ".." in name.split("/"):
                        raise ArchiveError(f"{sdist.name}: refusing path {name!r}")
                zf.extractall(dest)
        else:
            with tarfile.open(sdist, "r:*") as tar:
                safe_extract(tar, dest, strip_components=0, label=sdist.name,
                             max_bytes=max(sdist.stat().st_size * 50, 1 << 30))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveError(f"{sdist.name}: not a readable sdist: {exc}") from None
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise ArchiveError(f"{sdist.name}: an sdist holds one top directory, this one {len(tops)}")
    return tops[0]


def inspect_sdist(sdist: Path, work: Path) -> tuple[list[str], dict[str, list[str]]]:
    """What an sdist needs to build, before building it: its [build-system] requires and its native sources
    (native_sources), from a copy unpacked under `work`."""
    src = _unpack_sdist(sdist, work)
    return build_system(src)[0], native_sources(src)


def build_system(src: Path) -> tuple[list[str], str]:
    """[build-system] requires and build-backend (PEP 517/518 defaults when absent)."""
    pyproject = src / "pyproject.toml"
    data: dict[str, Any] = {}
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PackageError(f"{src.name}: pyproject.toml does not parse: {exc}") from None
    bs = data.get("build-system") or {}
    return list(bs.get("requires", ["setuptools>=40.8.0"])), str(bs.get("build-backend",
                                                                           "setuptools.build_meta:__legacy__"))


def native_sources(src: Path) -> dict[str, list[str]]:
    """What an unpacked sdist compiles: C/C++/Cython and Fortran sources, Rust crates (paths relative to it)."""
    found: dict[str, list[str]] = {"c": [], "fortran": [], "rust": []}
    for path in sorted(src.rglob("*")):
        rel = str(path.relative_to(src))
        if path.name == "Cargo.toml":
            found["rust"].append(rel)
        elif path.suffix.lower() in FORTRAN_SOURCES:
            found["fortran"].append(rel)
        elif path.suffix in C_SOURCES:
            found["c"].append(rel)
    return found


def refuse_unbuildable(pin: Pin, requires: list[str], native: dict[str, list[str]]) -> None:
    """One line for an sdist no WebAssembly toolchain here can build: Rust or Fortran."""
    rust = [r for r in requires if re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].strip().lower() in RUST_BACKENDS]
    if rust or native["rust"]:
        raise PackageError(f"{pin.name} {pin.version} needs Rust to build ({(rust or native['rust'])[0]}): "
                           "wasmbuild builds C and C++ extensions only",
                           hint="use a version with a pure-Python wheel, or leave the package out")
    if native["fortran"]:
        raise PackageError(f"{pin.name} {pin.version} needs Fortran to build ({native['fortran'][0]}): the "
                           "WebAssembly toolchains have no Fortran compiler",
                           hint="use a version with a pure-Python wheel, or leave the package out")


def _run(argv: list[str], *, env: dict[str, str], cwd: Path, log_file: Path, timeout: float, what: str) -> None:
    """Run a build command in its own process group, output to `log_file`; stopped (the whole group) after
    `timeout` seconds."""
    with open(log_file, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = proc.wait(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BuildError(f"{what} did not finish within {timeout:.0f} s and was stopped",
                                 hint=f"see {log_file}; a longer limit: --build-timeout SECONDS") from None
            raise
    if status != 0:
        raise BuildError(f"{what} failed (exit {status}): {first_error(log_file)}", hint=f"full log: {log_file}")


ERROR_LINE = re.compile(r"(error:.*|Error:.*|ERROR:.*)")


def first_error(log_file: Path) -> str:
    """The compiler's (or the backend's) first error line in a build log."""
    text = log_file.read_text(errors="replace")
    for line in text.splitlines():
        if (m := ERROR_LINE.search(line)) and "error: subprocess-exited-with-error" not in line:
            return m.group(1).strip()[:300]
    return (text.strip().splitlines() or ["(no output)"])[-1][:300]


def build_wheel(pin: Pin, sdist: Path, *, tools: ToolEnv, cross: CrossEnv, cache_root: Path, index: Index,
                logs: Path, allow_pure_fallback: bool, timeout: float = BUILD_TIMEOUT) -> Wheel:
    """The wheel of `sdist` for the cross environment's target (cached)."""
    key = cache.hash_key({"v": WHEELS_VERSION, "sdist": pin.sha256, "cross": cross.key,
                          "constraints": cache.sha256_file(tools.constraints), "tools": tools.key,
                          "fallback": allow_pure_fallback})
    entry = cache_root / "packages" / "wheels" / f"{pin.name.lower()}-{pin.version}-{key[:12]}"
    if cache.is_valid(entry, key):
        found = sorted(entry.glob("*.whl"))
        meta = json.loads((entry / "build.json").read_text())
        if len(found) == 1:
            log.info(f"  ✓ {found[0].name}: built earlier (cached)")
            return Wheel(found[0], pin, meta)
    logs.mkdir(parents=True, exist_ok=True)
    logf = logs / f"build-{pin.name.lower()}-{pin.version}.log"
    logf.write_text(f"# wasmbuild install: building {sdist.name} for {cross.platform_tag}\n")
    work = cross.root.parent / f"build-{pin.name.lower()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with log.step(f"Build {pin.name} {pin.version} from its sdist for {cross.platform_tag} (log: {logf})"), \
            cache.fresh_entry(entry, key):
        src = _unpack_sdist(sdist, work / "src")
        requires, backend = build_system(src)
        native = native_sources(src)
        refuse_unbuildable(pin, requires, native)
        env_dir = work / "env"
        base = {"PIP_NO_INPUT": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        _run([str(tools.python), "-m", "venv", "--without-pip", str(env_dir)], env=base, cwd=work, log_file=logf,
             timeout=300, what="creating the build venv")
        env_python = env_dir / "bin" / "python"
        _run([*tools.pip("--python", env_python, "install", "--only-binary", ":all:", "-c", tools.constraints,
                         *index.pip_args(), "--progress-bar", "off", *requires)],
             env=base, cwd=work, log_file=logf, timeout=600,
             what=f"installing the build requirements of {pin.name} ({', '.join(requires)})")
        frozen = capture([*tools.pip("--python", env_python, "list", "--format", "json")]).stdout
        build_requires = sorted(f"{d['name']}=={d['version']}" for d in json.loads(frozen or "[]"))
        out = work / "dist"
        cross_log = work / "compile-commands.log"
        env = {**base, **cross.env, "WASMBUILD_CROSS_LOG": str(cross_log)}
        _run([*tools.pip("--python", env_python, "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                         "-w", out, "--progress-bar", "off", "-v", src)],
             env=env, cwd=src, log_file=logf, timeout=timeout, what=f"building {sdist.name} ({backend})")
        if cross_log.is_file():
            with open(logf, "a") as f:
                f.write("\n# compiler commands (wasmbuild's wrappers)\n" + cross_log.read_text())
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise BuildError(f"building {sdist.name} made {len(built)} wheels, expected one", hint=f"see {logf}")
        wheel = built[0]
        check_wheel_platform(wheel, cross.platform_tag, pin)
        fell_back = wheel_tags(wheel.name)[2] == "any" and bool(native["c"])
        if fell_back and not allow_pure_fallback:
            raise PackageError(f"{pin.name} {pin.version}: its C extension did not build, the sdist fell back to "
                               f"pure Python ({len(native['c'])} C/Cython sources, e.g. {native['c'][0]}; "
                               f"first error: {first_error(logf)})",
                               hint=f"see {logf}; to install it without its extension: --allow-pure-fallback")
        meta = {"sdist": sdist.name, "build_backend": backend, "build_requires": build_requires,
                "pure_fallback": fell_back, "log": logf.name}
        shutil.copy2(wheel, entry / wheel.name)
        (entry / "build.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        # What goes into the record is what a cached build gives back (the same key order): the same bytes.
        meta = json.loads((entry / "build.json").read_text())
    shutil.rmtree(work, ignore_errors=True)
    return Wheel(entry / wheel.name, pin, meta)
