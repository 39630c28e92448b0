"""The build pipeline: one sequence of steps for every target, each returning a typed result the next one takes.

    provision_toolchain (target) -> Toolchain
    prepare_source               -> SourceTree     the extracted, patched CPython source (shared by every target)
    build_python(SourceTree)     -> BuildPython    the native build-python of the same version
    build_host(...)              -> HostBuild      the target's libraries, configure and make
    stage(HostBuild)             -> StagedTree     the artifact's tree: module, standard library, launcher
    package(StagedTree)          -> Artifact       the deterministic archives, the record, SHA256SUMS

Each step's output is a cache entry keyed by a hash of its inputs (cache.py): with nothing changed, a step is
skipped; a failed or interrupted step leaves no entry behind. The values passed between the steps (Context holds
the inputs only) are in steps.py; what differs per target is behind targets.base.Target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import extract_tarball
from wasmbuild.download import fetch
from wasmbuild.errors import ArchiveError, BuildError
from wasmbuild.files import write_json
from wasmbuild.kit import KIT_INSTALL
from wasmbuild.package import package
from wasmbuild.patching import apply_patches, patch_records
from wasmbuild.process import capture, require_tool, run
from wasmbuild.record import RECORD_FORMAT
from wasmbuild.staging import check_no_build_paths
from wasmbuild.steps import Artifact, BuildPython, Context, HostBuild, SourceTree, StagedTree
from wasmbuild.targets.base import HostSettings, Target, options_key
from wasmbuild.toolchain import Toolchain

# Bump to invalidate every cached build step after a change in how steps run.
STEPS_VERSION = 1
# Bump when staging changes (2: Emscripten side modules in lib-dynload/; 3: the cross-build kit).
STAGE_VERSION = 5


# --- the steps every target shares ------------------------------------------------------------------------


def host_cc_version() -> str:
    cc = os.environ.get("CC", "cc").split()[0]
    require_tool(cc, "to build the native build-python",
                 "install a C compiler (Debian: apt-get install build-essential)")
    out = capture([cc, "--version"]).stdout
    return out.splitlines()[0] if out else cc


def prepare_source(ctx: Context) -> SourceTree:
    """The extracted, patched CPython source tree (shared by every target)."""
    recipe = ctx.recipe
    got = fetch(recipe.source, ctx.cache, ctx.sources)
    patches = patch_records(recipe.patches)
    key = cache.hash_key({"v": STEPS_VERSION, "sha256": recipe.source.sha256, "patches": patches})
    entry = ctx.cache / "sources" / f"cpython-{recipe.version}-{key[:12]}"
    tree = SourceTree(entry, key, got, patches)
    if cache.is_valid(entry, key):
        return tree
    with log.step(f"Unpack CPython {recipe.version}" + (f" and apply {len(patches)} patches" if patches else "")), \
            cache.fresh_entry(entry, key):
        extract_tarball(got.path, entry, strip_components=1)
        if not (entry / "configure").is_file():
            raise ArchiveError(f"{got.path}: no 'configure' under {recipe.top_dir}/: not a CPython source release")
        apply_patches(entry, recipe.patches, f"CPython {recipe.version}", recipe.file)
    return tree


def run_configure(argv: list[str], *, cwd: Path, log_file: Path, what: str, env: dict[str, str] | None = None) -> None:
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


def build_python(ctx: Context, src: SourceTree) -> BuildPython:
    """The native build-python for this CPython version (shared by every target)."""
    cc = host_cc_version()
    require_tool("make", "to build CPython", "install GNU make (Debian: apt-get install make)")
    key = cache.hash_key({"v": STEPS_VERSION, "source": src.key, "cc": cc})
    entry = ctx.cache / "build-python" / f"cpython-{ctx.recipe.version}-{key[:12]}"
    result = BuildPython(entry / "python", key, cc)
    if cache.is_valid(entry, key):
        log.info(f"✓ build-python {ctx.recipe.version}: cached ({entry})")
        return result
    logf = ctx.log_file("build-python")
    with log.step(f"Build the native build-python {ctx.recipe.version} (log: {logf})"), \
            cache.fresh_entry(entry, key, cc=cc):
        run_configure([str(src.path / "configure"), "--prefix=/usr/local"], cwd=entry, log_file=logf,
                      what="configure of the build-python")
        run(["make", f"-j{ctx.jobs}", "all"], cwd=entry, log_file=logf, what="make of the build-python")
        out = capture([result.python, "-c", "import sys; print(sys.version)"])
        if out.returncode != 0 or not out.stdout.startswith(ctx.recipe.version):
            raise BuildError(f"the build-python at {result.python} does not run: {out.stderr.strip()}")
    return result


def configure_and_make(ctx: Context, entry: Path, key: str, settings: HostSettings, outputs: tuple[str, ...],
                       files: dict[str, str] | None = None) -> dict[str, Any]:
    """The host build in cache entry `entry` (skipped when valid): write `files` and the recipe's Setup.local,
    configure, make with the recipe's make_args, check that make produced `outputs`. Returns the configure
    record (the settings' record, plus the Setup.local lines)."""
    t = ctx.target
    files = dict(files or {})
    record = dict(settings.record)
    if t.setup_local:
        record["setup_local"] = list(t.setup_local)
        files["Modules/Setup.local"] = "# From the recipe's setup_local (wasmbuild)\n" + "\n".join(t.setup_local) + "\n"
    if cache.is_valid(entry, key):
        log.info(f"✓ host build {t.triple}: cached ({entry})")
        return record
    logf = ctx.log_file(f"host-{t.triple}")
    with cache.fresh_entry(entry, key):
        for name, text in files.items():
            (entry / name).parent.mkdir(parents=True, exist_ok=True)
            (entry / name).write_text(text)
        with log.step(f"Configure CPython {ctx.recipe.version} for {t.triple} (log: {logf})"):
            run_configure(settings.argv, cwd=entry, env=settings.env, log_file=logf, what=f"configure for {t.triple}")
        with log.step(f"Make CPython {ctx.recipe.version} for {t.triple} (log: {logf})"):
            run(["make", f"-j{ctx.jobs}", "all", *t.make_args], cwd=entry, env=settings.env, log_file=logf,
                what=f"make for {t.triple}")
        for name in outputs:
            if not (entry / name).is_file():
                raise BuildError(f"make finished but {entry / name} is missing; see {logf}")
        with log.step(f"Install CPython {ctx.recipe.version}'s headers and libpython for {t.triple} (log: {logf})"):
            run(["make", "inclinstall", "libainstall", *t.make_args, f"DESTDIR={entry / KIT_INSTALL}"], cwd=entry,
                env=settings.env, log_file=logf, what=f"make inclinstall libainstall for {t.triple}")
    return record


def build_host(ctx: Context, target: Target, tc: Toolchain, src: SourceTree, bp: BuildPython) -> HostBuild:
    """The target's libraries, then configure and make of CPython for it."""
    built = target.build_libraries(ctx, tc, src)
    t = ctx.target
    key = cache.hash_key({
        "v": [STEPS_VERSION, target.host_steps_version],
        "source": src.key,
        "build_python": bp.key,
        "toolchain": target.toolchain_key(tc),
        "target": options_key(t),
        **target.host_key_extra(built),
    })
    entry = ctx.cache / "hosts" / f"cpython-{ctx.recipe.version}-{t.triple}-{key[:12]}"
    settings = target.host_settings(ctx, src, entry, tc, bp, built)
    configure = configure_and_make(ctx, entry, key, settings, target.host_outputs, target.host_files())
    return HostBuild(entry, key, src, bp, tc, built, configure)


def artifact_name(ctx: Context, suffix: str = "") -> str:
    return f"cpython-{ctx.recipe.version}-{ctx.target.triple}{suffix}"


def stage(ctx: Context, target: Target, host: HostBuild) -> StagedTree:
    """Lay out the artifact's tree (cached by the host build's key and the target's staging inputs): the target's
    Target.stage_tree, then no build path may survive in it."""
    name = artifact_name(ctx, target.name_suffix)
    extra_key = target.stage_key(ctx)
    key = cache.hash_key({"host": host.key, "recipe": ctx.recipe.data, "stage": [RECORD_FORMAT, STAGE_VERSION],
                          **({"target": extra_key} if extra_key else {})})
    entry = ctx.cache / "stage" / f"{name}-{key[:12]}"
    if not cache.is_valid(entry, key):
        with log.step(f"Stage {name}"), cache.fresh_entry(entry, key):
            extra = target.stage_tree(ctx, host, entry)
            for part in (entry / "tree", entry / "dev"):
                if part.is_dir():
                    check_no_build_paths(part, [str(ctx.cache), str(host.path)])
            write_json(entry / "extra.json", extra)
    return StagedTree(host, name, entry, json.loads((entry / "extra.json").read_text()))


def build(ctx: Context, target: Target) -> Artifact:
    """Every step for ctx's recipe and target under the cache lock (a second run waits). The packaged artifact
    is not smoke-tested here: the build command does that (checks.smoke.smoke_test)."""
    with cache.lock(ctx.cache, wait=True):
        tc = target.provision_toolchain(ctx)
        src = prepare_source(ctx)
        bp = build_python(ctx, src)
        host = build_host(ctx, target, tc, src, bp)
        return package(ctx, target, stage(ctx, target, host))
