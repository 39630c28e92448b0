"""Recipes (recipes/cpython-X.Y.yaml) and toolchain manifests (toolchains/*.yaml): pure data, strictly validated."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild.errors import RecipeError, UsageError
from wasmbuild.schema import DOWNLOAD, Field, ListOf, MapOf, Sha256, load_yaml, validate

FORMAT = 1
TARGETS = ("wasi", "emscripten")

PATCH = {"file": str, "reason": str, "upstream": str}

TARGET_SCHEMA = {
    # The artifact's name part (cpython-<version>-<triple>) and the compiler's --target.
    "triple": str,
    # configure's --host (default: triple); older CPython releases know older spellings.
    "host": Field(str, required=False),
    "toolchain": str,
    # Relative to the CPython source tree.
    "config_site": Field(str, required=False),
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

RECIPE_SCHEMA = {
    "format": int,
    "version": str,
    "source": {**DOWNLOAD, "filename": str, "top_dir": str},
    "source_date_epoch": int,
    "patches": Field(ListOf(PATCH), required=False),
    "stdlib": Field({"exclude": ListOf(str)}, required=False),
    "targets": {t: Field(TARGET_SCHEMA, required=False) for t in TARGETS},
}

DEB_PACKAGE = {
    "name": str,
    "version": str,
    "suite": str,
    "path": str,
    "sha256": Sha256,
    "size": int,
}

TOOLCHAIN_SCHEMA = {
    "format": int,
    "name": str,
    "version": str,
    "components": Field(MapOf(str), required=False),
    # The JavaScript runtime a toolchain needs (Emscripten): the minimum node major version.
    "node": Field({"minimum": int}, required=False),
    # Patches applied to the provisioned toolchain (relative to patches/).
    "patches": Field(ListOf(PATCH), required=False),
    "routes": {
        "release": Field(
            ListOf({**DOWNLOAD, "platform": str, "strip_components": Field(int, required=False)}),
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


def project_root() -> Path:
    """The directory holding recipes/, toolchains/ and patches/."""
    candidates = []
    if env := os.environ.get("WASMBUILD_ROOT"):
        candidates.append(Path(env))
    candidates += [Path(__file__).resolve().parents[2], Path.cwd()]
    for candidate in candidates:
        if (candidate / "recipes").is_dir() and (candidate / "toolchains").is_dir():
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

    @property
    def name(self) -> str:
        return self.filename or self.url.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Download:
        return cls(**{k: data.get(k) for k in ("url", "sha256", "size", "filename", "debian")})


@dataclass(frozen=True)
class Patch:
    file: Path
    rel: str
    reason: str
    upstream: str


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
    data = load_yaml(file)
    validate(data, RECIPE_SCHEMA, file)
    if data["format"] != FORMAT:
        raise RecipeError(f"{file}: format: unsupported format {data['format']} (this wasmbuild reads {FORMAT})")
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


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def available_recipes(root: Path) -> dict[str, Path]:
    """Map 'X.Y' -> recipe file for every recipes/cpython-X.Y.yaml."""
    found = {}
    for path in sorted((root / "recipes").glob("cpython-*.yaml")):
        found[path.stem.removeprefix("cpython-")] = path
    return found


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


def _load_patches(file: Path, entries: list[dict[str, str]], patches_dir: Path) -> tuple[Patch, ...]:
    patches = []
    for i, p in enumerate(entries):
        path = patches_dir / p["file"]
        if not path.is_file():
            raise RecipeError(f"{file}: patches[{i}].file: patch file not found: {path}")
        patches.append(Patch(file=path, rel=p["file"], reason=p["reason"], upstream=p["upstream"]))
    return tuple(patches)


def load_toolchain(file: Path, patches_dir: Path | None = None) -> ToolchainManifest:
    data = load_yaml(file)
    validate(data, TOOLCHAIN_SCHEMA, file)
    if data["format"] != FORMAT:
        raise RecipeError(f"{file}: format: unsupported format {data['format']} (this wasmbuild reads {FORMAT})")
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
        debian_packages=tuple(DebPackage(**p) for p in debian.get("packages", [])),
        patches=_load_patches(file, data.get("patches", []), patches_dir),
        node_minimum=(data.get("node") or {}).get("minimum"),
        data=data,
    )


def toolchain_file(root: Path, name: str) -> Path:
    path = root / "toolchains" / f"{name}.yaml"
    if not path.is_file():
        raise RecipeError(f"toolchain manifest not found: {path}")
    return path

