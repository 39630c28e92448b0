"""The build spine shared by all targets: a Context, the source step and the native build-python step.

Each step's output is a cache entry keyed by a hash of its inputs (see cache.py): with nothing changed,
a step is skipped; a failed or interrupted step leaves no entry behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import __version__, cache, log
from wasmbuild.archive import extract_tarball
from wasmbuild.download import Fetched, Sources, fetch
from wasmbuild.errors import ArchiveError, BuildError, PatchError
from wasmbuild.process import require_tool, run
from wasmbuild.recipe import Patch, Recipe, TargetOptions

# Bump to invalidate every cached build step after a change in how steps run.
STEPS_VERSION = 1


@dataclass
class Context:
    root: Path
    cache: Path
    dist: Path
    recipe: Recipe
    target: TargetOptions
    sources: Sources
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    toolchain_route: str = "auto"
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    def log_file(self, step: str) -> Path:
        path = self.logs / f"{step}-{self.recipe.version}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# wasmbuild {__version__}: {step} for CPython {self.recipe.version}\n")
        return path


def host_cc_version() -> str:
    cc = os.environ.get("CC", "cc").split()[0]
    require_tool(cc, "to build the native build-python",
                 "install a C compiler (Debian: apt-get install build-essential)")
    out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else cc


def fetch_source(ctx: Context) -> Fetched:
    got = fetch(ctx.recipe.source, ctx.cache, ctx.sources)
    ctx.state["source"] = got
    return got


def prepare_source(ctx: Context) -> Path:
    """The extracted, patched CPython source tree (shared by every target)."""
    recipe = ctx.recipe
    got = ctx.state.get("source") or fetch_source(ctx)
    patches = patch_records(recipe.patches)
    key = cache.hash_key({"v": STEPS_VERSION, "sha256": recipe.source.sha256, "patches": patches})
    entry = ctx.cache / "sources" / f"cpython-{recipe.version}-{key[:12]}"
    ctx.state["source_key"] = key
    ctx.state["patches"] = patches
    if cache.is_valid(entry, key):
        return entry
    with log.step(f"Unpack CPython {recipe.version}" + (f" and apply {len(patches)} patches" if patches else "")), \
            cache.fresh_entry(entry, key):
        extract_tarball(got.path, entry, strip_components=1)
        if not (entry / "configure").is_file():
            raise ArchiveError(f"{got.path}: no 'configure' under {recipe.top_dir}/: not a CPython source release")
        apply_patches(entry, recipe.patches, f"CPython {recipe.version}", recipe.file)
    return entry


def apply_patches(tree: Path, patches: tuple[Patch, ...], what: str, listed_in: Path) -> None:
    """Apply `patches` (-p1) to `tree`; a patch that does not apply raises PatchError naming it."""
    if not patches:
        return
    patch = require_tool("patch", f"to apply the patches to {what}", "install patch (Debian: apt-get install patch)")
    for p in patches:
        proc = subprocess.run([patch, "-p1", "--batch", "--forward", "--dry-run", "-i", p.file],
                              cwd=tree, capture_output=True, text=True)
        if proc.returncode != 0:
            raise PatchError(
                f"patch {p.rel} no longer applies to {what}:\n" + proc.stdout.strip(),
                hint=f"refresh {p.file} against {what} or drop it from {listed_in.name}",
            )
        subprocess.run([patch, "-p1", "--batch", "--forward", "-s", "-i", p.file], cwd=tree, check=True)


def patch_records(patches: tuple[Patch, ...]) -> list[dict[str, str]]:
    return [
        {"file": p.rel, "sha256": cache.sha256_file(p.file), "reason": p.reason, "upstream": p.upstream}
        for p in patches
    ]


def run_configure(argv: list[str | os.PathLike[str]], *, cwd: Path, log_file: Path, what: str,
                  env: dict[str, str] | None = None) -> None:
    """Run configure; on failure append its config.log to the step log (the build directory is deleted)."""
    try:
        run(argv, cwd=cwd, env=env, log_file=log_file, what=what)
    except BuildError:
        config_log = cwd / "config.log"
        if config_log.is_file():
            with open(log_file, "a") as out:
                out.write("\n---- config.log ----\n")
                out.write(config_log.read_text(errors="replace"))
        raise


def configure_and_make_host(ctx: Context, entry: Path, key: str, argv: list[str], env: dict[str, str],
                           outputs: tuple[str, ...], files: dict[str, str] | None = None) -> Path:
    """The host build in cache entry `entry` (skipped when valid): write `files`, configure, make with the
    recipe's make_args, and check that make produced `outputs`."""
    t = ctx.target
    files = dict(files or {})
    if t.setup_local:
        ctx.state.setdefault("configure", {})["setup_local"] = list(t.setup_local)
        files["Modules/Setup.local"] = "# From the recipe's setup_local (wasmbuild)\n" + "\n".join(t.setup_local) + "\n"
    if cache.is_valid(entry, key):
        log.info(f"✓ host build {t.triple}: cached ({entry})")
        return entry
    logf = ctx.log_file(f"host-{t.triple}")
    with cache.fresh_entry(entry, key):
        for name, text in files.items():
            (entry / name).parent.mkdir(parents=True, exist_ok=True)
            (entry / name).write_text(text)
        with log.step(f"Configure CPython {ctx.recipe.version} for {t.triple} (log: {logf})"):
            run_configure(argv, cwd=entry, env=env, log_file=logf, what=f"configure for {t.triple}")
        with log.step(f"Make CPython {ctx.recipe.version} for {t.triple} (log: {logf})"):
            run(["make", f"-j{ctx.jobs}", "all", *t.make_args], cwd=entry, env=env, log_file=logf,
                what=f"make for {t.triple}")
        for name in outputs:
            if not (entry / name).is_file():
                raise BuildError(f"make finished but {entry / name} is missing; see {logf}")
    return entry


def build_python(ctx: Context) -> Path:
    """The native build-python for this CPython version (shared by every target)."""
    src = prepare_source(ctx)
    cc = host_cc_version()
    require_tool("make", "to build CPython", "install GNU make (Debian: apt-get install make)")
    key = cache.hash_key({"v": STEPS_VERSION, "source": ctx.state["source_key"], "cc": cc})
    entry = ctx.cache / "build-python" / f"cpython-{ctx.recipe.version}-{key[:12]}"
    ctx.state["build_python"] = {"cc": cc, "key": key, "path": str(entry / "python")}
    if cache.is_valid(entry, key):
        log.info(f"✓ build-python {ctx.recipe.version}: cached ({entry})")
        return entry / "python"
    logf = ctx.log_file("build-python")
    with log.step(f"Build the native build-python {ctx.recipe.version} (log: {logf})"), \
            cache.fresh_entry(entry, key, cc=cc):
        run_configure([src / "configure", "--prefix=/usr/local"], cwd=entry, log_file=logf,
                      what="configure of the build-python")
        run(["make", f"-j{ctx.jobs}", "all"], cwd=entry, log_file=logf, what="make of the build-python")
        python = entry / "python"
        out = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.startswith(ctx.recipe.version):
            raise BuildError(f"the build-python at {python} does not run: {out.stderr.strip()}")
    return entry / "python"


def build_triple(src: Path) -> str:
    return subprocess.run([src / "config.guess"], capture_output=True, text=True, check=True).stdout.strip()


def copy_tree(src: Path, dest: Path, exclude: tuple[str, ...] = ()) -> None:
    """Copy `src` to `dest`, leaving out __pycache__ and paths (relative to src) listed in `exclude`."""
    excluded = {e.strip("/") for e in exclude}

    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(src).as_posix()
        skip = {"__pycache__"}
        for name in names:
            path = name if rel == "." else f"{rel}/{name}"
            if path in excluded:
                skip.add(name)
        return skip

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
