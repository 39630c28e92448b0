"""Staging: laying out an artifact's tree from a host build, the part every target shares (Target.stage_tree
calls it): the standard library with .pyc and the generated sysconfig data (build paths mapped away), the
cross-build kit, LICENSE, the launcher; and the check that no build path survives in what is staged."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wasmbuild import log
from wasmbuild.errors import BuildError
from wasmbuild.kit import KIT_INSTALL, artifact_prefix_sysconfig, read_sysconfig_vars, stage_kit, sysconfig_module
from wasmbuild.process import capture
from wasmbuild.steps import Context, HostBuild

# Files the compiler must skip: they contain deliberate syntax errors (as CPython's `make install`).
COMPILEALL_EXCLUDE = "bad_coding|badsyntax|site-packages"


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
    proc = compile_bytecode(build_python, lib_root.parent, libdir, jobs=ctx.jobs,
                            source_date_epoch=ctx.recipe.source_date_epoch, exclude=COMPILEALL_EXCLUDE)
    if proc.returncode != 0:
        failed = [line for line in proc.stdout.splitlines() if line.startswith("*** Error compiling")]
        if not failed:
            raise BuildError(f"compileall failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        # Test data with deliberate errors that the exclusion pattern does not catch: kept as source.
        log.info(f"  {len(failed)} files left as source only (deliberate syntax errors in test data)")


def compile_bytecode(build_python: Path, root: Path, directory: Path, *, jobs: int, source_date_epoch: int,
                     exclude: str | None = None) -> subprocess.CompletedProcess[str]:
    """compileall over `directory` as the standard library's .pyc are made: unchecked-hash (no timestamps,
    reproducible), source paths as the guest sees them (`root` is the guest's /)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": str(source_date_epoch)}
    argv = [str(build_python), "-E", "-Wi", "-m", "compileall", "-q", "-f", f"-j{jobs}",
            "--invalidation-mode", "unchecked-hash", "-s", str(root), "-p", "/",
            *(["-x", exclude] if exclude else []), str(directory)]
    log.echo_command(argv)
    return capture(argv, env=env)


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


def sysconfig_files(build: Path) -> list[Path]:
    """The sysconfig data the host build generated (build/lib.*/_sysconfigdata_*.py, _sysconfig_vars_*.json)."""
    return sorted(p for p in (build / "build").glob("lib.*/*") if p.suffix in {".py", ".json"})


def output_mapping(ctx: Context, build_paths: dict[str, str]) -> dict[str, str]:
    """The build paths of a host build (the target's path map) and the cache, with the names they get in output."""
    return build_paths | {str(ctx.cache): "/cache"}


def stage_dirs(entry: Path) -> tuple[Path, Path, Path]:
    """The common layout's directories in a stage entry: tree/ (the artifact), debug/, dev/ (the -dev archive)."""
    tree, debug, dev = entry / "tree", entry / "debug", entry / "dev"
    for d in (tree, debug, dev / "lib"):
        d.mkdir(parents=True)
    return tree, debug, dev


def stage_common(ctx: Context, host: HostBuild, entry: Path, extra: dict[str, Any], build_paths: dict[str, str],
                 shared_modules: Sequence[Path], launcher: str) -> dict[str, Any]:
    """The common layout around a target's module (already in entry/tree, its extras in `extra`): the standard
    library with .pyc and the generated sysconfig data (`build_paths` mapped away), the cross-build kit (its static
    libraries in the -dev tree), LICENSE, python.sh with the `launcher` text. Returns `extra` with the kit's."""
    tree, dev = entry / "tree", entry / "dev"
    build, src = host.path, host.source.path
    generated = sysconfig_files(build)
    mapping = output_mapping(ctx, build_paths)
    install_stdlib(ctx, src, host.build_python.python, tree / "lib", generated, mapping, list(shared_modules))
    extra["kit"] = stage_kit(
        install=build / KIT_INSTALL, build=build, tree=tree, dev=dev, short=ctx.recipe.short_version,
        version=ctx.recipe.version, triple=ctx.target.triple, path_map=mapping,
        library_prefixes=[b.prefix for b in host.libraries],
        vars=read_sysconfig_vars(sysconfig_module(generated[0].parent)))
    (tree / "LICENSE").write_bytes((src / "LICENSE").read_bytes())
    path = tree / "python.sh"
    path.write_text(launcher)
    path.chmod(0o755)
    return extra
