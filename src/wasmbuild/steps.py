"""The values passed between the build's steps (pipeline.py drives the steps, targets/ implement them).

    BuildOptions how to build, whatever is built (from the command line or a caller)
    Context      a build's inputs: where things are, what to build, how to fetch
    SourceTree   the extracted, patched CPython source (prepare_source)
    BuildPython  the native build-python of the same version (build_python)
    HostBuild    a target's host build: libraries, configure, make (build_host)
    StagedTree   the artifact's tree laid out in the cache (stage)
    PackageExtra one more file a target adds to its packaged outputs (the web variant's npm package)
    Artifact     the packaged archive and its record (package)

These sit below the targets and the pipeline: both take and return them, neither owns them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import __version__
from wasmbuild.download import Fetched, Sources
from wasmbuild.libs import Built
from wasmbuild.recipe import Recipe, TargetOptions
from wasmbuild.record import BuildRecord
from wasmbuild.toolchain import Toolchain


@dataclass(frozen=True)
class BuildOptions:
    """How to build, whatever is built: the data directory, the cache and dist/, how inputs and the toolchain are
    fetched, how many jobs. `context` makes the Context of one recipe and target from them."""

    root: Path  # the data directory: recipes/, toolchains/, patches/
    cache: Path
    dist: Path
    sources: Sources
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    toolchain_route: str = "auto"
    wasi_sdk_path: Path | None = None  # --wasi-sdk-path
    node: str | None = None  # --node

    def context(self, recipe: Recipe, target: str) -> Context:
        """The build of `recipe` for `target` (a target the recipe lacks is a usage error)."""
        return Context(root=self.root, cache=self.cache, dist=self.dist, recipe=recipe, target=recipe.target(target),
                       sources=self.sources, jobs=self.jobs, toolchain_route=self.toolchain_route,
                       wasi_sdk_path=self.wasi_sdk_path, node=self.node)


@dataclass(frozen=True)
class Context:
    """A build's inputs: where things are, what to build, how to fetch. Step results are return values."""

    root: Path  # the data directory: recipes/, toolchains/, patches/
    cache: Path
    dist: Path
    recipe: Recipe
    target: TargetOptions
    sources: Sources
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    toolchain_route: str = "auto"
    wasi_sdk_path: Path | None = None  # --wasi-sdk-path
    node: str | None = None  # --node

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    def log_file(self, step: str) -> Path:
        path = self.logs / f"{step}-{self.recipe.version}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# wasmbuild {__version__}: {step} for CPython {self.recipe.version}\n")
        return path


@dataclass(frozen=True)
class SourceTree:
    path: Path
    key: str
    fetched: Fetched
    patches: list[dict[str, str]]


@dataclass(frozen=True)
class BuildPython:
    python: Path
    key: str
    cc: str


@dataclass(frozen=True)
class HostBuild:
    """A target's host build: its directory (holding `Target.host_outputs`) and what went into it."""

    path: Path
    key: str
    source: SourceTree
    build_python: BuildPython
    toolchain: Toolchain
    libraries: list[Built]
    configure: dict[str, Any]  # the record of configure (BuildRecord.configure)


@dataclass(frozen=True)
class StagedTree:
    """The artifact's tree as staged (Target.stage_tree) in a cache entry: tree/, debug/, dev/."""

    host: HostBuild
    name: str  # cpython-<version>-<triple>[-<variant>]
    entry: Path
    extra: dict[str, Any]  # the record's artifact extras

    @property
    def tree(self) -> Path:
        return self.entry / "tree"

    @property
    def debug(self) -> Path:
        return self.entry / "debug"

    @property
    def dev(self) -> Path:
        """The -dev archive's tree: the static libraries of the cross-build kit (kit.py); a target without the kit
        stages none."""
        return self.entry / "dev"


@dataclass(frozen=True)
class Artifact:
    """A packaged artifact: the archive in dist/, its record, the staged tree it came from."""

    archive: Path
    record: BuildRecord
    staged: StagedTree

    @property
    def build_python(self) -> BuildPython:
        return self.staged.host.build_python


@dataclass(frozen=True)
class PackageExtra:
    """A file a target adds to the packaged outputs in dist/ (the web variant: its npm package): `write()` makes
    it; `state` is what it is made from beyond the record (a change repackages)."""

    path: Path
    state: Any
    write: Callable[[], None]
