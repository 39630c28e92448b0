"""Packaging: the build record assembled from the step results, deterministic archives with the record first
(the artifact, its -debuginfo and -dev archives, a target's extra outputs), the record beside them,
dist/SHA256SUMS."""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any

from wasmbuild import __version__, cache, log
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.files import json_text, write_json
from wasmbuild.record import FETCH, RECORD_NAME, BuildRecord
from wasmbuild.release.index import INDEX_NAME
from wasmbuild.release.sums import PROVENANCE_SUFFIX, update_sha256sums
from wasmbuild.steps import Artifact, Context, StagedTree
from wasmbuild.targets.base import Target


def assemble_record(ctx: Context, target: Target, staged: StagedTree, debug_name: str | None,
                    dev_name: str | None) -> BuildRecord:
    """The build record from the step results."""
    host, r = staged.host, ctx.recipe
    tc, source = host.toolchain, host.source.fetched
    wasm = staged.tree / "python.wasm"
    return BuildRecord(
        wasmbuild=__version__,
        python={"implementation": "cpython", "version": r.version},
        target=target.record_target(ctx.target),
        recipe=r.file.name,
        source_date_epoch=r.source_date_epoch,
        inputs=[
            {"name": r.source.name, "role": "cpython-source", "url": r.source.url, "sha256": r.source.sha256,
             "size": r.source.size, FETCH: {"route": source.route, "url": source.url}},
            *({"role": "toolchain", **i} for i in tc.inputs),
            *({"role": "library", **lib} for lib in staged.extra.get("libraries", [])),
        ],
        toolchain=tc.record(),
        build_python={"cc": host.build_python.cc, "host": platform.machine()},
        patches=host.source.patches,
        configure=target.record_configure(host),
        stdlib=target.record_stdlib(r),
        artifact={
            "python.wasm": {"sha256": cache.sha256_file(wasm), "size": wasm.stat().st_size, "stripped": True},
            "debuginfo": debug_name,
            "dev": dev_name,
            **staged.extra,
        },
    )


def package(ctx: Context, target: Target, staged: StagedTree) -> Artifact:
    """The archive, the -dev archive (the kit's static libraries) and the debuginfo archive of a staged tree, each
    with the record first; the record beside them, the target's extra outputs (Target.package_extras),
    SHA256SUMS. Skipped when dist/ already holds exactly these bytes."""
    name = staged.name
    # A target without separate debug info (Emscripten links with -g0) says "debuginfo": None.
    debug_name = staged.extra.get("debuginfo", f"{name}-debuginfo.tar.gz")
    # A target without the cross-build kit (the web variant) stages no -dev tree.
    dev_name = f"{name}-dev.tar.gz" if staged.dev.is_dir() else None
    record = assemble_record(ctx, target, staged, debug_name, dev_name)
    data = record.to_json()
    ctx.dist.mkdir(parents=True, exist_ok=True)
    archive = ctx.dist / f"{name}.tar.gz"
    write_json(ctx.dist / f"{name}{PROVENANCE_SUFFIX}", record.provenance(archive.name))
    outputs = [archive, *([ctx.dist / debug_name] if debug_name else []), *([ctx.dist / dev_name] if dev_name else []),
               ctx.dist / f"{name}.BUILD.json"]
    extras = target.package_extras(ctx, staged)
    packaged = staged.entry / "packaged.json"
    # The exact bytes of the record (not just its content): a change in how it is written repackages.
    state: dict[str, Any] = {"record": hashlib.sha256(json_text(data).encode()).hexdigest()}
    for extra in extras:
        outputs.append(extra.path)
        state[f"inputs of {extra.path.name}"] = extra.state  # an edited input of the extra output repackages
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
        for extra in extras:
            extra.write()
        write_json(ctx.dist / f"{name}.BUILD.json", data)
        write_json(packaged, state | {p.name: cache.sha256_file(p) for p in outputs})
        sums = update_sha256sums(ctx.dist)
        size = archive.stat().st_size
        log.info(f"  {archive} ({size / 1e6:.1f} MB), sha256 {cache.sha256_file(archive)}")
        log.info(f"  {sums}")
    return Artifact(archive, record, staged)
