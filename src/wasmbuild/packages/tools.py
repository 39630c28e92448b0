"""The tool venv `wasmbuild install` works in: a venv of the native build-python of the artifact's CPython version
(the one the build made, pipeline.build_python), with pip and PyPA's installer at the versions and hashes of
recipes/packages/tools.txt. Same version as the artifact's interpreter: pip computes the cp3XX tags and evaluates
`python_version` markers from it, and an sdist's build backend compiles against the right ABI.

pip always runs here with `--isolated`: the machine's pip configuration (constraints, find-links, extra indexes set
up for the host's own Python) does not change what goes into an artifact. The index is the one given with
--index-url, else pip's own configured `index-url` (read from pip, never named here), else pip's default.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.errors import BuildError, UsageError
from wasmbuild.process import capture, run
from wasmbuild.steps import BuildPython

TOOLS_VERSION = 1
TOOLS_FILE = "recipes/packages/tools.txt"
BUILD_CONSTRAINTS = "recipes/packages/build-constraints.txt"


@dataclass(frozen=True)
class Index:
    """Where packages come from: pip's --index-url and --extra-index-url, --find-links (None: pip's default)."""

    url: str | None = None
    extra: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def pip_args(self) -> list[str]:
        args = [] if self.url is None else ["--index-url", self.url]
        for url in self.extra:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args

    def record(self) -> dict[str, object]:
        return {"index_url": self.url or "pip's default", "extra_index_urls": list(self.extra),
                "find_links": list(self.find_links)}


CONFIG_LINE = re.compile(r"^(?:global|install|download)\.index-url='(.*)'$")


def configured_index(python: str | os.PathLike[str] = sys.executable) -> str | None:
    """The index-url pip is configured with on this machine (PIP_INDEX_URL, then pip's config files), asked of pip
    itself; None when there is none (pip's default) or pip cannot say."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    try:
        proc = capture([python, "-m", "pip", "config", "list"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in proc.stdout.splitlines():
        if m := CONFIG_LINE.match(line.strip()):
            return m.group(1)
    return None


@dataclass(frozen=True)
class ToolEnv:
    """The tool venv: its python (pip and installer importable) and the build constraints file."""

    root: Path
    python: Path
    constraints: Path
    key: str

    def pip(self, *args: str | os.PathLike[str]) -> list[str]:
        return [str(self.python), "-m", "pip", "--isolated", "--disable-pip-version-check", *map(str, args)]


def tool_env(project: Path, build_python: BuildPython, cache_root: Path, index: Index) -> ToolEnv:
    """The tool venv for `build_python` (cached: keyed by the build-python and tools.txt)."""
    tools = project / TOOLS_FILE
    constraints = project / BUILD_CONSTRAINTS
    for f in (tools, constraints):
        if not f.is_file():
            raise UsageError(f"{f} is missing", hint="run wasmbuild from its source checkout (recipes/ is data)")
    key = cache.hash_key({"v": TOOLS_VERSION, "python": build_python.key, "tools": cache.sha256_file(tools)})
    entry = cache_root / "packages" / "tools" / f"venv-{key[:12]}"
    env = ToolEnv(entry, entry / "bin" / "python", constraints, key)
    if cache.is_valid(entry, key):
        return env
    ssl = capture([build_python.python, "-c", "import ssl, zlib"])
    if ssl.returncode != 0:
        raise BuildError(f"the build-python at {build_python.python} has no ssl or zlib module, which pip needs to "
                         f"download packages: {(ssl.stderr.strip().splitlines() or ['?'])[-1]}",
                         hint="install OpenSSL's and zlib's headers (Debian: apt-get install libssl-dev zlib1g-dev), "
                              f"remove {build_python.python.parent} and run again (it is rebuilt with them)")
    logf = cache_root / "logs" / f"packages-tools-{key[:12]}.log"
    with log.step(f"Set up the package tools (pip, installer) for the build-python (log: {logf})"), \
            cache.fresh_entry(entry, key):
        # A venv made by an uninstalled build-python: its standard library is the source tree's, ensurepip's pip
        # (from the pinned CPython source) bootstraps the pinned pip and installer.
        run([build_python.python, "-m", "venv", entry], log_file=logf, what="creating the tool venv")
        run(env.pip("install", "--no-deps", "--require-hashes", "--only-binary", ":all:", *index.pip_args(),
                    "-r", tools), log_file=logf, what=f"installing {TOOLS_FILE} into the tool venv")
        proc = capture(env.pip("--version"))
        if proc.returncode != 0:
            raise BuildError(f"the tool venv's pip does not run: {proc.stderr.strip()[-500:]}", hint=f"see {logf}")
    return env
