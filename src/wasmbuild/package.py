"""Packaging: the standard library with .pyc (staging's common part), deterministic archives with the build
record first, dist/SHA256SUMS."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmbuild import cache, log
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.errors import BuildError
from wasmbuild.files import atomic_write, json_text, write_json
from wasmbuild.index import INDEX_NAME
from wasmbuild.kit import artifact_prefix_sysconfig
from wasmbuild.npm import NPM_NAME, is_npm_tarball, package_inputs, tarball_name, write_npm_package
from wasmbuild.process import capture
from wasmbuild.record import RECORD_NAME

if TYPE_CHECKING:
    from wasmbuild.pipeline import Artifact, Context, StagedTree

# Files the compiler must skip: they contain deliberate syntax errors (as CPython's `make install`).
COMPILEALL_EXCLUDE = "bad_coding|badsyntax|site-packages"
# Text files in the standard library that the build generates and that may contain build paths.
GENERATED_GLOBS = ("_sysconfigdata_*.py", "_sysconfig_vars_*.json")


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


def install_stdlib(ctx: Context, src: Path, build_python: Path, lib_root: Path, generated: list[Path],
                   path_map: dict[str, str], shared_modules: list[Path] | tuple[()] = ()) -> None:
    """Copy Lib/ (minus the recipe's exclusions), add the generated sysconfig data with build paths
    replaced, put the shared extension modules the build made (Emscripten side modules) in lib-dynload/,
    and compile .pyc (unchecked-hash: no timestamps, reproducible)."""
    libdir = lib_root / f"python{ctx.recipe.short_version}"
    copy_tree(src / "Lib", libdir, exclude=ctx.recipe.stdlib_exclude)
    (libdir / "lib-dynload").mkdir(exist_ok=True)
    for module in shared_modules:
        (libdir / "lib-dynload" / module.name).write_bytes(module.read_bytes())
    for path in generated:
        text = path.read_text()
        # Longest first: a build directory may live inside the cache.
        for old, new in sorted(path_map.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(old, new)
        (libdir / path.name).write_text(artifact_prefix_sysconfig(text))
    env = {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch)}
    argv = [str(build_python), "-E", "-Wi", "-m", "compileall", "-q", "-f", f"-j{ctx.jobs}",
            "--invalidation-mode", "unchecked-hash", "-s", str(lib_root.parent), "-p", "/",
            "-x", COMPILEALL_EXCLUDE, str(libdir)]
    log.echo_command(argv)
    proc = capture(argv, env=env)
    if proc.returncode != 0:
        failed = [line for line in proc.stdout.splitlines() if line.startswith("*** Error compiling")]
        if not failed:
            raise BuildError(f"compileall failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        # Test data with deliberate errors that the exclusion pattern does not catch: kept as source.
        log.info(f"  {len(failed)} files left as source only (deliberate syntax errors in test data)")


def check_no_build_paths(tree: Path, needles: list[str]) -> None:
    """Fail if any file in the staged tree still names a build path (the output must not depend on where
    it was built)."""
    encoded = [n.encode() for n in needles if n]
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for needle in encoded:
            if needle in data:
                raise BuildError(
                    f"{path.relative_to(tree)} contains the build path {needle.decode()!r}: the artifact "
                    "would not be reproducible",
                    hint="extend the path map (-ffile-prefix-map / generated file rewrite) for this file",
                )


# Beside each archive: where this build fetched its inputs. It depends on the route, so it is not a release file
# and SHA256SUMS leaves it out (the same inputs by any route give the same SHA256SUMS).
PROVENANCE_SUFFIX = ".provenance.json"


def update_sha256sums(dist: Path) -> Path:
    lines = []
    for path in sorted(dist.iterdir()):
        if path.is_file() and (path.name == INDEX_NAME or is_npm_tarball(path.name) or path.name.startswith("cpython-")
                               and not path.name.endswith(PROVENANCE_SUFFIX)):
            lines.append(f"{cache.sha256_file(path)}  {path.name}\n")
    out = dist / "SHA256SUMS"
    atomic_write(out, "".join(lines))
    return out


def package(ctx: Context, staged: StagedTree) -> Artifact:
    """The archive, the -dev archive (the kit's static libraries) and the debuginfo archive of a staged tree, each
    with the record first; the record beside them, SHA256SUMS. Skipped when dist/ already holds exactly these bytes."""
    from wasmbuild.pipeline import Artifact, assemble_record

    name = staged.name
    # A target without separate debug info (Emscripten links with -g0) says "debuginfo": None.
    debug_name = staged.extra.get("debuginfo", f"{name}-debuginfo.tar.gz")
    # A target without the cross-build kit (the web variant) stages no -dev tree.
    dev_name = f"{name}-dev.tar.gz" if staged.dev.is_dir() else None
    record = assemble_record(ctx, staged, debug_name, dev_name)
    data = record.to_json()
    ctx.dist.mkdir(parents=True, exist_ok=True)
    archive = ctx.dist / f"{name}.tar.gz"
    write_json(ctx.dist / f"{name}{PROVENANCE_SUFFIX}", record.provenance(archive.name))
    outputs = [archive, *([ctx.dist / debug_name] if debug_name else []), *([ctx.dist / dev_name] if dev_name else []),
               ctx.dist / f"{name}.BUILD.json"]
    # The web variant's npm package (wasmbuild.npm): one more output, from the staged tree and the project's web/.
    npm_out = ctx.dist / tarball_name(ctx.recipe.version) if staged.target.variant == "web" else None
    packaged = staged.entry / "packaged.json"
    # The exact bytes of the record (not just its content): a change in how it is written repackages.
    state: dict[str, Any] = {"record": hashlib.sha256(json_text(data).encode()).hexdigest()}
    if npm_out:
        outputs.append(npm_out)
        state["npm"] = package_inputs(ctx.root)  # an edited JS API repackages
    if packaged.is_file() and all(p.is_file() for p in outputs):
        previous = json.loads(packaged.read_text())
        if all(previous.get(k) == v for k, v in state.items()) and all(
            previous.get(p.name) == cache.sha256_file(p) for p in outputs
        ):
            update_sha256sums(ctx.dist)
            log.info(f"✓ {archive.name}: up to date in {ctx.dist}")
            return Artifact(archive, record, staged)
    with log.step(f"Package {name}.tar.gz"):
        # dist/ changes: a release index written before no longer describes it (nox -s release writes a new one).
        (ctx.dist / INDEX_NAME).unlink(missing_ok=True)
        write_json(staged.tree / RECORD_NAME, data)
        write_deterministic_tar_gz(archive, staged.tree, name, ctx.recipe.source_date_epoch, first=[RECORD_NAME])
        if debug_name:
            write_json(staged.debug / RECORD_NAME, data)
            write_deterministic_tar_gz(ctx.dist / debug_name, staged.debug, f"{name}-debuginfo",
                                       ctx.recipe.source_date_epoch, first=[RECORD_NAME])
        if dev_name:
            # The -dev archive has the artifact's own top directory: unpacked in the same place, the two merge.
            write_json(staged.dev / RECORD_NAME, data)
            write_deterministic_tar_gz(ctx.dist / dev_name, staged.dev, name, ctx.recipe.source_date_epoch,
                                       first=[RECORD_NAME])
        if npm_out:
            write_npm_package(staged.tree, ctx.dist, python_version=ctx.recipe.version, root=ctx.root,
                              mtime=ctx.recipe.source_date_epoch)
            log.info(f"  {npm_out} ({npm_out.stat().st_size / 1e6:.1f} MB): the npm package {NPM_NAME}")
        write_json(ctx.dist / f"{name}.BUILD.json", data)
        write_json(packaged, state | {p.name: cache.sha256_file(p) for p in outputs})
        sums = update_sha256sums(ctx.dist)
        size = archive.stat().st_size
        log.info(f"  {archive} ({size / 1e6:.1f} MB), sha256 {cache.sha256_file(archive)}")
        log.info(f"  {sums}")
    return Artifact(archive, record, staged)
