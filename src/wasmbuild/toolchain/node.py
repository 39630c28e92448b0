"""Finding node for the toolchains (Emscripten's compiler and the artifacts it builds run on it): the one named,
the one on PATH when new enough, else the pinned node of toolchains/host-tools.yaml provisioned into the cache.
Running python.js under node, and finding a node without provisioning one, is the engine's (engines/nodejs.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from wasmbuild import cache
from wasmbuild.download import Sources
from wasmbuild.engines.nodejs import NODE_MINIMUM, Node, checked_node, explicit_node, node_on_path
from wasmbuild.recipe import project_root
from wasmbuild.toolchain import debian, hosttools

__all__ = ["NODE_MINIMUM", "Node", "find_node", "pinned_node_finder"]


def find_node(minimum: int, explicit: str | None = None, cache_root: Path | None = None,
              sources: Sources | None = None) -> Node:
    """The node to use: `explicit` (--node / WASMBUILD_NODE), else the one on PATH if at least `minimum`, else the
    pinned node of toolchains/host-tools.yaml, provisioned into the cache (and put first on this process's PATH,
    so emcc, python.sh and the test-suite workers find the same node)."""
    explicit = explicit or os.environ.get("WASMBUILD_NODE")
    hint = (f"install node >= {minimum} or name one with --node / WASMBUILD_NODE (with neither, wasmbuild "
            "provisions its pinned node)")
    if explicit:
        return explicit_node(explicit, minimum, hint)
    return node_on_path(minimum) or _provisioned_node(minimum, cache_root, sources, hint)


def _provisioned_node(minimum: int, cache_root: Path | None, sources: Sources | None, hint: str) -> Node:
    """The pinned node; `sources` are the command's (else, for `run` and the smoke test, the environment's)."""
    if sources is None:
        mirror_dir = os.environ.get("WASMBUILD_MIRROR_DIR")
        sources = Sources(mirror_dir=Path(mirror_dir) if mirror_dir else None,
                          debian_mirror=debian.resolve_mirror(None))
    (tool,) = hosttools.ensure(["node"], project_root(), cache_root or cache.default_cache_dir(), sources)
    os.environ["PATH"] = hosttools.path_with([tool])
    return checked_node(tool.path("node"), minimum, hint)


def pinned_node_finder(cache_root: Path | None = None) -> Callable[[], Path]:
    """What artifact.run_python takes as `node` from callers that may provision: find_node's node (NODE_MINIMUM),
    looked up only when an Emscripten artifact runs."""
    return lambda: find_node(NODE_MINIMUM, cache_root=cache_root).path
