"""Staging and packaging: the standard library with .pyc, deterministic archives, the build record,
dist/SHA256SUMS."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from wasmbuild import __version__, cache, log
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.build import Context, copy_tree
from wasmbuild.errors import BuildError

RECORD_FORMAT = 1
# Bump when staging changes (2: Emscripten side modules in lib-dynload/).
STAGE_VERSION = 2
RECORD_NAME = "BUILD.json"
# Files the compiler must skip: they contain deliberate syntax errors (as CPython's `make install`).
COMPILEALL_EXCLUDE = "bad_coding|badsyntax|site-packages"
# Text files in the standard library that the build generates and that may contain build paths.
GENERATED_GLOBS = ("_sysconfigdata_*.py", "_sysconfig_vars_*.json")


def artifact_name(ctx: Context, suffix: str = "") -> str:
    return f"cpython-{ctx.recipe.version}-{ctx.target.triple}{suffix}"


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
        (libdir / path.name).write_text(text)
    env = {**os.environ, "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch)}
    argv = [str(build_python), "-E", "-Wi", "-m", "compileall", "-q", "-f", f"-j{ctx.jobs}",
            "--invalidation-mode", "unchecked-hash", "-s", str(lib_root.parent), "-p", "/",
            "-x", COMPILEALL_EXCLUDE, str(libdir)]
    log.echo_command(argv)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
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


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json_text(data))
    tmp.replace(path)


def build_record(ctx: Context, extra: dict[str, Any], wasm: Path, debug_name: str) -> dict[str, Any]:
    source = ctx.state["source"]
    tc = ctx.state["toolchain"]
    r = ctx.recipe
    return {
        "format": RECORD_FORMAT,
        "wasmbuild": __version__,
        "python": {"implementation": "cpython", "version": r.version},
        "target": {"name": ctx.target.name, "triple": ctx.target.triple},
        "recipe": r.file.name,
        "source_date_epoch": r.source_date_epoch,
        "inputs": [
            {"name": r.source.name, "role": "cpython-source", "url": source.url, "route": source.route,
             "upstream_url": r.source.url, "sha256": r.source.sha256, "size": r.source.size},
            *({"role": "toolchain", **i} for i in tc.inputs),
            *({"role": "library", **lib} for lib in extra.get("libraries", [])),
        ],
        "toolchain": tc.record(),
        "build_python": {"cc": ctx.state["build_python"]["cc"], "host": platform.machine()},
        "patches": ctx.state["patches"],
        "configure": ctx.state["configure"],
        "stdlib": {"exclude": list(r.stdlib_exclude), "pyc": "unchecked-hash"},
        "artifact": {
            "python.wasm": {"sha256": cache.sha256_file(wasm), "size": wasm.stat().st_size, "stripped": True},
            "debuginfo": debug_name,
            **extra,
        },
    }


def update_sha256sums(dist: Path) -> Path:
    lines = []
    for path in sorted(dist.iterdir()):
        if path.is_file() and path.name.startswith("cpython-") and not path.name.startswith("."):
            lines.append(f"{cache.sha256_file(path)}  {path.name}\n")
    out = dist / "SHA256SUMS"
    tmp = dist / ".SHA256SUMS.tmp"
    tmp.write_text("".join(lines))
    tmp.replace(out)
    return out


def package(ctx: Context, build: Path, stage_fn) -> Path:
    """Stage the artifact (cached by the host build's key), write the archive, the record, SHA256SUMS."""
    name = artifact_name(ctx)
    key = cache.hash_key({"host": ctx.state["host_key"], "recipe": ctx.recipe.data,
                          "stage": [RECORD_FORMAT, STAGE_VERSION]})
    entry = ctx.cache / "stage" / f"{name}-{key[:12]}"
    if not cache.is_valid(entry, key):
        with log.step(f"Stage {name}"), cache.fresh_entry(entry, key):
            extra = stage_fn(ctx, build, entry / "tree", entry / "debug")
            check_no_build_paths(entry / "tree", [str(ctx.cache), str(build)])
            write_json(entry / "extra.json", extra)
    extra = json.loads((entry / "extra.json").read_text())
    # A target without separate debug info (Emscripten links with -g0) says "debuginfo": None.
    debug_name = extra.get("debuginfo", artifact_name(ctx, "-debuginfo") + ".tar.gz")
    record = build_record(ctx, extra, entry / "tree" / "python.wasm", debug_name)
    ctx.dist.mkdir(parents=True, exist_ok=True)
    archive = ctx.dist / f"{name}.tar.gz"
    outputs = [archive, *([ctx.dist / debug_name] if debug_name else []), ctx.dist / f"{name}.BUILD.json"]
    packaged = entry / "packaged.json"
    # The exact bytes of the record (not just its content): a change in how it is written repackages.
    state = {"record": hashlib.sha256(json_text(record).encode()).hexdigest()}
    if packaged.is_file() and all(p.is_file() for p in outputs):
        previous = json.loads(packaged.read_text())
        if previous.get("record") == state["record"] and all(
            previous.get(p.name) == cache.sha256_file(p) for p in outputs
        ):
            update_sha256sums(ctx.dist)
            log.info(f"✓ {archive.name}: up to date in {ctx.dist}")
            return archive
    with log.step(f"Package {name}.tar.gz"):
        write_json(entry / "tree" / RECORD_NAME, record)
        write_deterministic_tar_gz(archive, entry / "tree", name, ctx.recipe.source_date_epoch, first=[RECORD_NAME])
        if debug_name:
            write_json(entry / "debug" / RECORD_NAME, record)
            write_deterministic_tar_gz(ctx.dist / debug_name, entry / "debug", artifact_name(ctx, "-debuginfo"),
                                       ctx.recipe.source_date_epoch, first=[RECORD_NAME])
        write_json(ctx.dist / f"{name}.BUILD.json", record)
        write_json(packaged, state | {p.name: cache.sha256_file(p) for p in outputs})
        sums = update_sha256sums(ctx.dist)
        size = archive.stat().st_size
        log.info(f"  {archive} ({size / 1e6:.1f} MB), sha256 {cache.sha256_file(archive)}")
        log.info(f"  {sums}")
    return archive
