"""Recipes (recipes/cpython-X.Y.yaml) and toolchain manifests (toolchains/*.yaml): pure data, strictly validated."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import log
from wasmbuild.errors import RecipeError, UsageError
from wasmbuild.names import TARGET_NAMES
from wasmbuild.schema import (
    DOWNLOAD,
    Field,
    FileName,
    ListOf,
    MapOf,
    RelPath,
    Sha256,
    download_name,
    load_document,
)

FORMAT = 1

# `file` is relative to patches/ (and must stay inside it).
PATCH = {"file": RelPath, "reason": str, "upstream": str}
# A recipe is recipes/cpython-X.Y.yaml; its version is X.Y.Z (optionally a pre-release: 3.14.0rc1).
RECIPE_NAME = re.compile(r"^cpython-(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.yaml$")
VERSION = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:(?:a|b|rc)[1-9][0-9]*)?$")

TARGET_SCHEMA = {
    # The artifact's name part (cpython-<version>-<triple>) and the compiler's --target.
    "triple": str,
    # configure's --host (default: triple); older CPython releases know older spellings.
    "host": Field(str, required=False),
    "toolchain": str,
    # Relative to the CPython source tree.
    "config_site": Field(RelPath, required=False),
    "configure_args": Field(ListOf(str), required=False),
    # autoconf cache variables (ac_cv_*, py_cv_*) passed to configure.
    "config_cache": Field(MapOf(str), required=False),
    "cflags": Field(ListOf(str), required=False),
    "ldflags": Field(ListOf(str), required=False),
    # Variables given to make on its command line (they override the generated Makefile's).
    "make_args": Field(ListOf(str), required=False),
    # Lines for the build's Modules/Setup.local (modules that configure does not offer for this target, e.g.
    # _ctypes on CPython 3.11 Emscripten); make variables like $(LIBFFI_CFLAGS) come from the libraries.
    "setup_local": Field(ListOf(str), required=False),
    # C libraries (recipes/libraries.yaml) built for this target before CPython.
    "libraries": Field(ListOf(str), required=False),
    "smoke": Field(
        {
            "imports": ListOf(str),
            "tests": ListOf(str),
        },
        required=False,
    ),
}

def recipe_schema(targets: tuple[str, ...]) -> dict[str, Any]:
    """The recipe schema for the registered targets (names.TARGET_NAMES: the registry, wasmbuild.targets, is
    held to that list by a unit test)."""
    return {**RECIPE_SCHEMA, "targets": {t: Field(TARGET_SCHEMA, required=False) for t in targets}}


RECIPE_SCHEMA: dict[str, Any] = {
    "format": int,
    "version": str,
    "source": {**DOWNLOAD, "filename": FileName, "top_dir": FileName},
    "source_date_epoch": int,
    "patches": Field(ListOf(PATCH), required=False),
    "stdlib": Field({"exclude": ListOf(str)}, required=False),
    "targets": {},  # one optional TARGET_SCHEMA per registered target: recipe_schema()
}

# The SPDX licence expression of a toolchain input or patch, e.g. `Apache-2.0 WITH LLVM-exception`: metadata for the
# SBOM (wasmbuild.release.sbom.licenses_from_project requires one on every entry and checks it), never part of a
# cache key.
LICENSE = Field(str, required=False)

DEB_PACKAGE = {
    "name": str,
    "version": str,
    "suite": str,
    # Relative to the Debian mirror's base url (pool/...).
    "path": RelPath,
    "sha256": Sha256,
    "size": int,
    "license": LICENSE,
}

TOOLCHAIN_SCHEMA = {
    "format": int,
    "name": str,
    "version": str,
    "components": Field(MapOf(str), required=False),
    # The JavaScript runtime a toolchain needs (Emscripten): the minimum node major version.
    "node": Field({"minimum": int}, required=False),
    # Patches applied to the provisioned toolchain (relative to patches/).
    "patches": Field(ListOf({**PATCH, "license": LICENSE}), required=False),
    "routes": {
        "release": Field(
            ListOf({**DOWNLOAD, "platform": str, "strip_components": Field(int, required=False), "license": LICENSE}),
            required=False,
        ),
        "debian": Field(
            {
                "platform": str,
                "arch": str,
                "packages": ListOf(DEB_PACKAGE),
            },
            required=False,
        ),
    },
}


def _is_data_root(path: Path) -> bool:
    return (path / "recipes").is_dir() and (path / "toolchains").is_dir()


def project_root() -> Path:
    """The directory holding recipes/, toolchains/ and patches/: WASMBUILD_ROOT when set (and not empty), else
    this checkout, else the current directory."""
    if env := os.environ.get("WASMBUILD_ROOT"):
        root = Path(env).expanduser()
        if not _is_data_root(root):
            what = "does not exist" if not root.exists() else "has no recipes/ and toolchains/ directories"
            raise UsageError(f"WASMBUILD_ROOT={env}: {what}",
                             hint="point WASMBUILD_ROOT at a wasmbuild checkout, or unset it")
        return root.resolve()
    for candidate in (Path(__file__).resolve().parents[2], Path.cwd()):
        if _is_data_root(candidate):
            return candidate.resolve()
    raise UsageError(
        "cannot find the wasmbuild data directories (recipes/, toolchains/)",
        hint="run from a wasmbuild checkout or set WASMBUILD_ROOT",
    )


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str
    size: int | None = None
    filename: str | None = None
    debian: str | None = None
    # An upper bound in bytes for an input whose upstream publishes no size (the loader requires size or this).
    max_size: int | None = None

    @property
    def name(self) -> str:
        return download_name({"url": self.url, "filename": self.filename})  # the loader checked it is plain

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Download:
        return cls(url=data["url"], sha256=data["sha256"], size=data.get("size"), filename=data.get("filename"),
                   debian=data.get("debian"), max_size=data.get("max_size"))


@dataclass(frozen=True)
class Patch:
    file: Path
    rel: str
    reason: str
    upstream: str
    # The SPDX expression of a toolchain patch (toolchain manifests only; CPython's patches are CPython's).
    license: str | None = None


@dataclass(frozen=True)
class TargetOptions:
    name: str
    triple: str
    host: str
    toolchain: str
    config_site: str | None
    configure_args: tuple[str, ...]
    config_cache: dict[str, str]
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    libraries: tuple[str, ...]
    make_args: tuple[str, ...]
    setup_local: tuple[str, ...]
    smoke_imports: tuple[str, ...]
    smoke_tests: tuple[str, ...]


@dataclass(frozen=True)
class Recipe:
    file: Path
    version: str
    source: Download
    top_dir: str
    source_date_epoch: int
    patches: tuple[Patch, ...]
    stdlib_exclude: tuple[str, ...]
    targets: dict[str, TargetOptions] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def short_version(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def target(self, name: str) -> TargetOptions:
        if name not in self.targets:
            have = ", ".join(sorted(self.targets)) or "none"
            raise UsageError(
                f"CPython {self.version} has no recipe for target '{name}' ({self.file.name} defines: {have})"
            )
        return self.targets[name]


def load_recipe(file: Path, patches_dir: Path | None = None) -> Recipe:
    data = load_document(file, recipe_schema(TARGET_NAMES), FORMAT)
    _check_version(file, data["version"])
    if not data["targets"]:
        raise RecipeError(f"{file}: targets: the recipe defines no targets",
                          hint=f"add at least one of: {', '.join(TARGET_NAMES)}")
    patches_dir = patches_dir or file.parent.parent / "patches"
    patches = _load_patches(file, data.get("patches", []), patches_dir)
    targets = {}
    for name, t in data["targets"].items():
        smoke = t.get("smoke", {})
        for i, line in enumerate(t.get("setup_local", ())):
            if "=" in line:
                raise RecipeError(f"{file}: targets.{name}.setup_local[{i}]: a Setup line may not contain '=' "
                                  "(CPython's makesetup reads it as a variable definition)",
                                  hint="write -DNAME instead of -DNAME=1")
        targets[name] = TargetOptions(
            name=name,
            triple=t["triple"],
            host=t.get("host", t["triple"]),
            toolchain=t["toolchain"],
            config_site=t.get("config_site"),
            configure_args=tuple(t.get("configure_args", ())),
            config_cache=dict(t.get("config_cache", {})),
            cflags=tuple(t.get("cflags", ())),
            ldflags=tuple(t.get("ldflags", ())),
            libraries=tuple(t.get("libraries", ())),
            make_args=tuple(t.get("make_args", ())),
            setup_local=tuple(t.get("setup_local", ())),
            smoke_imports=tuple(smoke.get("imports", ())),
            smoke_tests=tuple(smoke.get("tests", ())),
        )
    return Recipe(
        file=file,
        version=data["version"],
        source=Download.from_data(data["source"]),
        top_dir=data["source"]["top_dir"],
        source_date_epoch=data["source_date_epoch"],
        patches=patches,
        stdlib_exclude=tuple(data.get("stdlib", {}).get("exclude", ())),
        targets=targets,
        data=data,
    )


def _check_version(file: Path, version: str) -> None:
    if not VERSION.match(version):
        raise RecipeError(f"{file}: version: expected a CPython release like 3.13.1 or 3.14.0rc1, got {version!r}")
    if (m := RECIPE_NAME.match(file.name)) and version.split(".")[:2] != [m[1], m[2]]:
        raise RecipeError(f"{file}: version: {version} does not match the file name (cpython-{m[1]}.{m[2]}.yaml must "
                          f"hold CPython {m[1]}.{m[2]}.x)",
                          hint=f"fix the version, or name the file cpython-{'.'.join(version.split('.')[:2])}.yaml")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


_warned: set[Path] = set()  # stray files already reported (available_recipes runs more than once per command)


def available_recipes(root: Path) -> dict[str, Path]:
    """Map 'X.Y' -> recipe file for every recipes/cpython-X.Y.yaml, oldest first. Other cpython-*.yaml files are
    skipped with a warning."""
    found = {}
    for path in sorted((root / "recipes").glob("cpython-*.yaml")):
        m = RECIPE_NAME.match(path.name)
        problem = "not named cpython-X.Y.yaml" if not m else None if path.is_file() else "not a file"
        if problem:
            if path not in _warned:
                _warned.add(path)
                log.warn(f"ignoring recipes/{path.name}: {problem}")
            continue
        assert m is not None  # a name that does not match is a problem above
        found[f"{m[1]}.{m[2]}"] = path
    return dict(sorted(found.items(), key=lambda item: _version_key(item[0])))


def select_recipe(root: Path, requested: str | None) -> Recipe:
    """`None` -> newest; '3.13' or '3.13.15' -> that recipe. Unknown versions list the supported ones."""
    recipes = available_recipes(root)
    if not recipes:
        raise UsageError(f"no recipes found in {root / 'recipes'}")
    if requested is None:
        short = max(recipes, key=_version_key)
    else:
        short = ".".join(requested.split(".")[:2])
        if short not in recipes:
            raise UsageError(
                f"unknown CPython version '{requested}'",
                hint=f"supported versions: {', '.join(sorted(recipes, key=_version_key))}",
            )
    recipe = load_recipe(recipes[short], root / "patches")
    if requested and requested.count(".") >= 2 and requested != recipe.version:
        raise UsageError(
            f"unknown CPython version '{requested}'",
            hint=f"the {short} recipe builds {recipe.version}; supported versions: "
            + ", ".join(sorted(recipes, key=_version_key)),
        )
    return recipe


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    suite: str
    path: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ReleaseAsset:
    platform: str
    download: Download
    strip_components: int


@dataclass(frozen=True)
class ToolchainManifest:
    file: Path
    name: str
    version: str
    components: dict[str, str]
    release: tuple[ReleaseAsset, ...]
    debian_platform: str | None
    debian_arch: str | None
    debian_packages: tuple[DebPackage, ...]
    patches: tuple[Patch, ...] = ()
    node_minimum: int | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    # sha256 -> SPDX expression of the release archives and Debian packages that declare a `license`.
    licenses: dict[str, str] = field(default_factory=dict, repr=False)


def _load_patches(file: Path, entries: list[dict[str, str]], patches_dir: Path) -> tuple[Patch, ...]:
    patches = []
    for i, p in enumerate(entries):
        path = patches_dir / p["file"]
        if not path.resolve().is_relative_to(patches_dir.resolve()):
            raise RecipeError(f"{file}: patches[{i}].file: {p['file']} resolves outside {patches_dir} (a symlink?)",
                              hint="keep patch files inside patches/")
        if not path.is_file():
            raise RecipeError(f"{file}: patches[{i}].file: patch file not found: {path}")
        patches.append(Patch(file=path, rel=p["file"], reason=p["reason"], upstream=p["upstream"],
                             license=p.get("license")))
    return tuple(patches)


def load_toolchain(file: Path, patches_dir: Path | None = None) -> ToolchainManifest:
    data = load_document(file, TOOLCHAIN_SCHEMA, FORMAT)
    patches_dir = patches_dir or file.parent.parent / "patches"
    routes = data["routes"]
    release = tuple(
        ReleaseAsset(
            platform=r["platform"], download=Download.from_data(r), strip_components=r.get("strip_components", 1)
        )
        for r in routes.get("release", [])
    )
    debian = routes.get("debian") or {}
    return ToolchainManifest(
        file=file,
        name=data["name"],
        version=data["version"],
        components=dict(data.get("components", {})),
        release=release,
        debian_platform=debian.get("platform"),
        debian_arch=debian.get("arch"),
        # The licence is not part of a package's identity (DebPackage is a cache key): kept beside it.
        debian_packages=tuple(DebPackage(**{k: v for k, v in p.items() if k != "license"})
                              for p in debian.get("packages", [])),
        patches=_load_patches(file, data.get("patches", []), patches_dir),
        node_minimum=(data.get("node") or {}).get("minimum"),
        data=data,
        licenses={e["sha256"]: e["license"] for e in [*routes.get("release", []), *debian.get("packages", [])]
                  if "license" in e},
    )


def toolchain_file(root: Path, name: str) -> Path:
    path = root / "toolchains" / f"{name}.yaml"
    if not path.is_file():
        raise RecipeError(f"toolchain manifest not found: {path}")
    return path

