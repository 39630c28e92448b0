"""The web artifact's commands: `wasmbuild serve` (the REPL page of web/ with a web artifact, built when none is
given, on 127.0.0.1: serve.py is the server) and `wasmbuild npm-pack` (its npm package into dist/, npm.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from wasmbuild import log, pipeline, serve
from wasmbuild.artifact import WebRuntime, artifact_runtime, unpack_artifact
from wasmbuild.errors import UsageError
from wasmbuild.npm import write_npm_package
from wasmbuild.recipe import select_recipe
from wasmbuild.record import RECORD_NAME
from wasmbuild.release.sums import update_sha256sums
from wasmbuild.steps import BuildOptions
from wasmbuild.targets import get_target
from wasmbuild.toolchain.hosttools import preflight


def web_artifact(artifact: Path, cache_root: Path) -> Path:
    """The unpacked tree of a web artifact (archive or directory); another artifact is a usage error."""
    root = unpack_artifact(artifact, cache_root)
    if not isinstance(artifact_runtime(root), WebRuntime):
        raise UsageError(f"{artifact} is not a web artifact (no python.mjs)",
                         hint="build one with: nox -s build-emscripten -- --variant web")
    return root


def serve_repl(*, artifact: Path | None, python: str | None, port: int, options: BuildOptions) -> None:
    """The web artifact (`artifact`, or the `python` one built as `build --variant web` would) and the project's
    web/, assembled in a temporary directory and served on 127.0.0.1:`port` until interrupted."""
    if artifact is not None and python:
        raise UsageError("--python and --artifact both name the CPython to serve", hint="give one of them")
    if artifact is None:
        preflight("emscripten")
        ctx = options.context(select_recipe(options.root, python), "emscripten")
        artifact = pipeline.build(ctx, get_target("emscripten", "web")).archive
    root = web_artifact(artifact, options.cache)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-serve-") as tmp:
        site = serve.assemble(root, options.root / "web", Path(tmp) / "site")
        log.info(f"wasmbuild: the REPL page with {root.name}")
        serve.serve_forever(site, host="127.0.0.1", port=port)


def npm_pack(artifact: Path, *, dist: Path, cache_root: Path, root: Path) -> Path:
    """The npm package of a web artifact (archive or directory) in `dist`, listed in its SHA256SUMS; the project at
    `root` gives the JS API."""
    tree = web_artifact(artifact, cache_root)
    record = json.loads((tree / RECORD_NAME).read_text())
    out = write_npm_package(tree, dist, python_version=record["python"]["version"], root=root,
                            mtime=record["source_date_epoch"])
    update_sha256sums(dist)
    return out
