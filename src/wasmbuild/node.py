"""Finding node (Emscripten's compiler and artifacts run on it): the one named, the one on PATH when new enough,
else the pinned node of toolchains/host-tools.yaml provisioned into the cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.download import Sources
from wasmbuild.errors import ToolchainError
from wasmbuild.process import capture

# Oldest node that runs emcc 3.1.69 and the built python.js (a toolchain manifest may ask for more).
NODE_MINIMUM = 18


@dataclass(frozen=True)
class Node:
    path: Path
    version: str


def _node_version(node: str) -> str:
    try:
        out = capture([node, "--version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"cannot run node at {node}: {exc}") from None
    if out.returncode != 0:
        raise ToolchainError(f"cannot run node at {node} (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout.strip().lstrip("v")


def find_node(minimum: int, explicit: str | None = None, cache_root: Path | None = None,
              sources: Sources | None = None) -> Node:
    """The node to use: `explicit` (--node / WASMBUILD_NODE), else the one on PATH if at least `minimum`, else the
    pinned node of toolchains/host-tools.yaml, provisioned into the cache (and put first on this process's PATH,
    so emcc, python.sh and the test-suite workers find the same node)."""
    explicit = explicit or os.environ.get("WASMBUILD_NODE")
    hint = (f"install node >= {minimum} or name one with --node / WASMBUILD_NODE (with neither, wasmbuild "
            "provisions its pinned node)")
    if explicit:
        path = Path(shutil.which(explicit) or explicit).resolve()
        if not path.is_file():
            raise ToolchainError(f"node not found at {explicit}", hint=hint)
        return _checked_node(path, minimum, hint)
    found = shutil.which("node") or shutil.which("nodejs")
    if found:
        path = Path(found).resolve()
        version = _node_version(str(path))
        if _new_enough(version, minimum):
            return Node(path, version)
        log.info(f"  node {version} at {path} is older than {minimum}: using the pinned node instead")
    return _provisioned_node(minimum, cache_root, sources, hint)


def _new_enough(version: str, minimum: int) -> bool:
    match = re.match(r"(\d+)\.", version)
    return match is not None and int(match.group(1)) >= minimum


def _checked_node(path: Path, minimum: int, hint: str) -> Node:
    version = _node_version(str(path))
    if not _new_enough(version, minimum):
        raise ToolchainError(f"node {version or '?'} at {path} is too old (need >= {minimum})", hint=hint)
    return Node(path, version)


def _provisioned_node(minimum: int, cache_root: Path | None, sources: Sources | None, hint: str) -> Node:
    """The pinned node; `sources` are the command's (else, for `run` and the smoke test, the environment's)."""
    from wasmbuild.recipe import project_root
    from wasmbuild.toolchain import debian, hosttools

    if sources is None:
        mirror_dir = os.environ.get("WASMBUILD_MIRROR_DIR")
        sources = Sources(mirror_dir=Path(mirror_dir) if mirror_dir else None,
                          debian_mirror=debian.resolve_mirror(None))
    (tool,) = hosttools.ensure(["node"], project_root(), cache_root or cache.default_cache_dir(), sources)
    os.environ["PATH"] = hosttools.path_with([tool])
    return _checked_node(tool.path("node"), minimum, hint)
