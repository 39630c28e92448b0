"""The Target interface: everything target-specific, behind one abstract class; the shared parts written once.

A target provisions its toolchain, builds the C libraries it links, says how CPython is configured for it
(argv, environment, the record of both with build paths as placeholders), which files make must produce, what
its staged artifact adds to the common layout (the module, a loader, a launcher) and how extension modules are
linked into it. The pipeline (pipeline.py) drives these steps in the same order for every target. How an artifact
runs is not the target's: artifact.py answers it by the artifact's kind (artifact_runtime).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from wasmbuild import libs, log, staging
from wasmbuild.errors import RecipeError
from wasmbuild.kit import Module
from wasmbuild.libs import Built
from wasmbuild.process import capture
from wasmbuild.recipe import Recipe, TargetOptions, ToolchainManifest, load_toolchain, toolchain_file
from wasmbuild.steps import BuildPython, Context, HostBuild, PackageExtra, SourceTree, StagedTree
from wasmbuild.toolchain import Toolchain


@dataclass(frozen=True)
class ExtensionTools:
    """How a target's toolchain compiles a package's extension modules (`wasmbuild install`, packages/cross.py):
    the C and C++ compilers and the shared-module link as argv, flags every compile adds, the environment they
    run in. `linked_into_interpreter`: the module a package build makes is a relocatable object that is then
    linked into a new interpreter module (link_modules), not a module loaded at run time."""

    cc: list[str]
    cxx: list[str]
    ldshared: list[str]
    cflags: list[str]
    env: dict[str, str]
    linked_into_interpreter: bool


@dataclass(frozen=True)
class PathMap:
    """Build paths and the neutral names they get in the output (-ffile-prefix-map, generated files).

    `named` entries (placeholder, real path, neutral name) also appear in the record, as `<placeholder>`;
    `unnamed` ones (the libraries' prefixes) are recorded by the libraries themselves."""

    named: tuple[tuple[str, Path, str], ...]
    unnamed: tuple[tuple[Path, str], ...] = ()

    def mapping(self) -> dict[str, str]:
        return {**{str(real): neutral for _, real, neutral in self.named},
                **{str(real): neutral for real, neutral in self.unnamed}}

    def prefix_map_flags(self) -> list[str]:
        return [f"-ffile-prefix-map={real}={neutral}" for real, neutral in self.mapping().items()]

    def recorded_flags(self) -> list[str]:
        return [f"-ffile-prefix-map=<{name}>={neutral}" for name, _, neutral in self.named]


@dataclass(frozen=True)
class HostSettings:
    """How configure runs for a target: its argv, its environment, and the record of both (no machine paths)."""

    argv: list[str]
    env: dict[str, str]
    record: dict[str, Any]


# configure writes the absolute paths of the `install`, `mkdir` and `llvm-profdata` it finds on PATH into the
# Makefile, and so into the artifact's sysconfig data (INSTALL, MKDIR_P, 3.11's LLVM_PROF_MERGER): the artifact
# would depend on the builder's PATH and on what the machine has installed. Given by name instead (make finds
# them on PATH; llvm-profdata serves only PGO builds, which these are not); a recipe's config_cache may override.
PATH_INDEPENDENT_CACHE = {"ac_cv_path_install": "install -c", "ac_cv_path_mkdir": "mkdir",
                          "ac_cv_path_LLVM_PROFDATA": "llvm-profdata"}


def config_cache(t: TargetOptions) -> dict[str, str]:
    """The autoconf cache variables configure gets: wasmbuild's PATH-independent ones, then the recipe's."""
    return dict(sorted({**PATH_INDEPENDENT_CACHE, **t.config_cache}.items()))


def options_key(t: TargetOptions) -> dict[str, Any]:
    """The recipe's options for a target, as they enter the host build's cache key."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in t.__dict__.items()}


def build_triple(src: Path) -> str:
    """The build machine's triple, as CPython's own config.guess names it."""
    return capture([src / "config.guess"], check=True).stdout.strip()


class Target(ABC):
    """One compilation target. Subclasses set the class attributes and implement the abstract steps."""

    name: ClassVar[str]  # the recipe's key under targets:, the CLI's --target
    host_outputs: ClassVar[tuple[str, ...]]  # files make must produce in the host build
    # Bump when the host build's commands change (invalidates this target's cached host builds only).
    host_steps_version: ClassVar[int]
    # A target built in more than one way has one subclass per variant (names.TARGET_VARIANTS, the registry's
    # VARIANTS): `variant` names it (None: the target has no variants), and a variant other than the target's
    # default adds `name_suffix` to the artifact's name (cpython-<version>-<triple><suffix>).
    variant: ClassVar[str | None] = None
    name_suffix: ClassVar[str] = ""

    # --- toolchain and libraries ----------------------------------------------------------------------------
    def provision_toolchain(self, ctx: Context) -> Toolchain:
        """The toolchain for ctx.target (its manifest under toolchains/), by ctx's route."""
        manifest = load_toolchain(toolchain_file(ctx.root, ctx.target.toolchain))
        with log.step(f"Provision {manifest.name} {manifest.version}"):
            tc = self.provision(manifest, ctx)
            log.info(f"  {manifest.name} {tc.version} via the {tc.route} route{self.toolchain_note(tc)}: {tc.path}")
        return tc

    @abstractmethod
    def provision(self, manifest: ToolchainManifest, ctx: Context) -> Toolchain:
        """The target's provisioner for `manifest` (toolchain/), with ctx's sources, route and overrides."""

    def toolchain_note(self, tc: Toolchain) -> str:
        """What the provisioning line adds after the route (default: nothing)."""
        return ""

    def toolchain_key(self, tc: Toolchain) -> dict[str, Any]:
        """What identifies the compiler in cache keys (default: the toolchain's whole record)."""
        return tc.record()

    def library_env(self, ctx: Context, tc: Toolchain, src: Path) -> dict[str, str] | None:
        """The environment the libraries' build scripts get (recipes/libraries.yaml: CC, AR, RANLIB, CFLAGS, HOST,
        BUILD, CONFIGURE_WRAPPER); None: this target builds no C libraries."""
        return None

    def build_libraries(self, ctx: Context, tc: Toolchain, src: SourceTree) -> list[Built]:
        """The C libraries the recipe names for this target (recipes/libraries.yaml), built with `tc`. A library
        build is shared by every CPython version: its key is the library, the toolchain and the target."""
        if not ctx.target.libraries:
            return []
        env = self.library_env(ctx, tc, src.path)
        if env is None:
            raise RecipeError(f"{ctx.recipe.file}: targets.{self.name}.libraries: the {self.name} target builds no "
                              "C libraries")
        selected = libs.select(ctx.root / "recipes" / "libraries.yaml", ctx.target.libraries, ctx.recipe.file)
        return libs.build_all(selected, cache_root=ctx.cache, sources=ctx.sources, target=ctx.target.triple,
                              toolchain_key=self.toolchain_key(tc), env=env, jobs=ctx.jobs, log_dir=ctx.logs)

    @staticmethod
    def libraries_record(built: list[Built]) -> dict[str, str]:
        """The variables configure gets from the libraries, their prefixes as /opt/<name> (the record's view)."""
        return {k: v.replace(str(b.prefix), f"/opt/{b.lib.name}") for b in built for k, v in b.configure_env().items()}

    # --- host build ---------------------------------------------------------------------------------------
    def host_key_extra(self, built: list[Built]) -> dict[str, Any]:
        """Inputs of the host build beyond the source, build-python, toolchain and recipe options."""
        return {}

    def host_files(self) -> dict[str, str]:
        """Files written into the host build directory before configure (name -> text)."""
        return {}

    @abstractmethod
    def path_map(self, src: Path, build: Path, tc: Toolchain, built: list[Built]) -> PathMap:
        """The build paths of this target's host build and their neutral names."""

    @abstractmethod
    def host_settings(self, ctx: Context, src: SourceTree, build: Path, tc: Toolchain, bp: BuildPython,
                      built: list[Built]) -> HostSettings:
        """configure's argv and environment for the host build in `build`, and their record."""

    # The part every target shares.
    @staticmethod
    def configure_argv(ctx: Context, src: Path, build: Path, bp: BuildPython) -> list[str]:
        t = ctx.target
        return [
            # A relative path: configure then records a relative VPATH, and getpath.c's VPATH string (compiled
            # into the module) names no directory of this machine.
            os.path.relpath(src / "configure", build),
            f"--host={t.host}",
            f"--build={build_triple(src)}",
            f"--with-build-python={bp.python}",
            *t.configure_args,
            *(f"{k}={v}" for k, v in config_cache(t).items()),
        ]

    @staticmethod
    def configure_record(t: TargetOptions, paths: PathMap) -> dict[str, Any]:
        """The record's common head: configure arguments (machine paths as placeholders), CONFIG_SITE, the
        autoconf cache overrides, CFLAGS with the path map's placeholders."""
        return {
            "args": [f"--host={t.host}", "--build=<build triple>", "--with-build-python=<build-python>",
                     *t.configure_args],
            "config_site": t.config_site,
            "config_cache": config_cache(t),
            "cflags": [*paths.recorded_flags(), *t.cflags],
        }

    @staticmethod
    def common_env(ctx: Context, src: Path, paths: PathMap) -> dict[str, str]:
        t = ctx.target
        env = {
            "CFLAGS": " ".join([*paths.prefix_map_flags(), *t.cflags]),
            "PKG_CONFIG_PATH": "",
            "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch),
        }
        if t.config_site:
            env["CONFIG_SITE"] = str(src / t.config_site)
        return env

    # --- staging ------------------------------------------------------------------------------------------
    launcher: ClassVar[str]  # python.sh's text

    def stage_key(self, ctx: Context) -> dict[str, Any]:
        """Inputs of staging beyond the host build and the recipe (default: none)."""
        return {}

    def stage_tree(self, ctx: Context, host: HostBuild, entry: Path) -> dict[str, Any]:
        """Lay out the artifact in entry/tree (debug info in entry/debug; the -dev archive's tree in entry/dev, when
        there is one); return the record's artifact extras. Default: the target's module (stage_module) in the
        common layout (staging.stage_common)."""
        tree, debug, _dev = staging.stage_dirs(entry)
        extra = {"launcher": "python.sh", **self.stage_module(host, tree, debug)}
        paths = self.path_map(host.source.path, host.path, host.toolchain, host.libraries)
        return staging.stage_common(ctx, host, entry, extra, paths.mapping(), self.shared_modules(host.path),
                                    self.launcher)

    @abstractmethod
    def stage_module(self, host: HostBuild, dest: Path, debug: Path) -> dict[str, Any]:
        """Put the built module (and its loader) into `dest`, debug info into `debug`; return the record's
        artifact extras known at this point."""

    def shared_modules(self, build: Path) -> list[Path]:
        """Extension modules built as shared objects, installed into lib-dynload/ (default: none)."""
        return []

    def package_extras(self, ctx: Context, staged: StagedTree) -> list[PackageExtra]:
        """Files this target adds to dist/ beside its archives, made when it is packaged (default: none)."""
        return []

    # --- the record ---------------------------------------------------------------------------------------------
    def record_target(self, t: TargetOptions) -> dict[str, str]:
        """The record's `target`: the target's name and triple (a variant adds its name)."""
        return {"name": self.name, "triple": t.triple}

    def record_configure(self, host: HostBuild) -> dict[str, Any]:
        """The record's `configure` (default: the host build's configure record)."""
        return host.configure

    def record_stdlib(self, recipe: Recipe) -> dict[str, Any]:
        """The record's `stdlib`: what was left out, how the .pyc are made."""
        return {"exclude": list(recipe.stdlib_exclude), "pyc": "unchecked-hash"}

    # --- building against the artifact (wasmbuild link) ------------------------------------------------------
    # Whether link_modules links against libpython (the -dev archive's static libraries) or needs headers only.
    link_needs_dev: ClassVar[bool]

    @abstractmethod
    def extension_tools(self, tc: Toolchain, triple: str) -> ExtensionTools:
        """The compilers and link that build a package's extension modules for this target (ExtensionTools)."""

    @abstractmethod
    def link_modules(self, tc: Toolchain, tree: Path, modules: Sequence[Module], work: Path, log_file: Path,
                     short: str, triple: str) -> dict[str, str]:
        """Build the extension `modules` into the unpacked artifact `tree` (its cross-build kit, kit.py) with
        `tc` for `triple` (X.Y: `short`), compiling in `work`; which file of the tree holds each module (name ->
        path relative to the tree)."""
