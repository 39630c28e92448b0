"""node as an engine: an Emscripten python.js run under node as its launcher (python.sh) runs it, and a light
lookup of a node that is already there (named, on PATH, or wasmbuild's pinned node already in the cache).

Provisioning the pinned node (fetching it) belongs to the toolchains (toolchain/node.py: find_node); this module
imports nothing heavy, so running an artifact does not load recipes, downloads or toolchains.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.engines import TIMEOUT_EXIT, provisioned_tool, unlimited_stack
from wasmbuild.errors import ToolchainError
from wasmbuild.process import call, capture

# Oldest node that runs emcc 3.1.69 and the built python.js (a toolchain manifest may ask for more).
NODE_MINIMUM = 18
# node's V8 stack for Emscripten artifacts (KiB), run with the stack rlimit raised to its hard limit: deep
# recursion in CPython's tests overflows node's default (~984 KiB) before wasm's own stack limit.
NODE_STACK_KB = 30000


@dataclass(frozen=True)
class Node:
    path: Path
    version: str


def node_version(node: str) -> str:
    """What `node --version` says, without the v."""
    try:
        out = capture([node, "--version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"cannot run node at {node}: {exc}") from None
    if out.returncode != 0:
        raise ToolchainError(f"cannot run node at {node} (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout.strip().lstrip("v")


def new_enough(version: str, minimum: int) -> bool:
    match = re.match(r"(\d+)\.", version)
    return match is not None and int(match.group(1)) >= minimum


def checked_node(path: Path, minimum: int, hint: str) -> Node:
    """The node at `path` if it runs and is at least `minimum`, else one ToolchainError with `hint`."""
    version = node_version(str(path))
    if not new_enough(version, minimum):
        raise ToolchainError(f"node {version or '?'} at {path} is too old (need >= {minimum})", hint=hint)
    return Node(path, version)


def explicit_node(explicit: str, minimum: int, hint: str) -> Node:
    """The node named by --node / WASMBUILD_NODE (a command on PATH or a path)."""
    path = Path(shutil.which(explicit) or explicit).resolve()
    if not path.is_file():
        raise ToolchainError(f"node not found at {explicit}", hint=hint)
    return checked_node(path, minimum, hint)


def node_on_path(minimum: int) -> Node | None:
    """node (or nodejs) on PATH if it is at least `minimum`; an older one is reported and passed over."""
    found = shutil.which("node") or shutil.which("nodejs")
    if found:
        path = Path(found).resolve()
        version = node_version(str(path))
        if new_enough(version, minimum):
            return Node(path, version)
        log.info(f"  node {version} at {path} is older than {minimum}: using the pinned node instead")
    return None


def available_node(cache_root: Path | None = None, minimum: int = NODE_MINIMUM, explicit: str | None = None) -> Path:
    """A node that is already there, without provisioning one: `explicit` or WASMBUILD_NODE, else node on PATH if
    at least `minimum`, else wasmbuild's pinned node if it is already in the cache (hosttools.ensure's pointer).
    None of them: one ToolchainError saying how to get one."""
    explicit = explicit or os.environ.get("WASMBUILD_NODE")
    hint = (f"install node >= {minimum} or name one with WASMBUILD_NODE (`python -m wasmbuild run` provisions "
            "wasmbuild's pinned node)")
    if explicit:
        return explicit_node(explicit, minimum, hint).path
    found = node_on_path(minimum)
    if found:
        return found.path
    pinned = provisioned_tool(cache_root or cache.default_cache_dir(), "node", "node")
    if pinned is None:
        raise ToolchainError(f"no node >= {minimum} to run an Emscripten artifact: none named, none on PATH and "
                             "wasmbuild's pinned node is not in the cache", hint=hint)
    return checked_node(pinned, minimum, hint).path


def node_command(node: Path, script: Path) -> list[str]:
    """node with the stack an Emscripten python.js needs (NODE_STACK_KB; the launcher raises `ulimit -s` to
    match)."""
    return [str(node), f"--stack-size={NODE_STACK_KB}", str(script)]


def run_node_python(node: Path, home: Path, args: Sequence[str], *, cwd: Path | None = None,
                    env: dict[str, str] | None = None, stdout: Path | None = None, stderr: Path | None = None,
                    timeout: float | None = None) -> int:
    """Run home/python.js under `node` as python.sh does: host paths (NODERAWFS), PYTHONHOME=home, the stack
    limit raised; the guest's exit status (a signal's as 128 + its number; TIMEOUT_EXIT after `timeout`)."""
    argv = [*node_command(node, home / "python.js"), *args]
    full_env = {**os.environ, "PYTHONHOME": str(home), **(env or {})}
    with contextlib.ExitStack() as files:
        out = files.enter_context(open(stdout, "wb")) if stdout else None
        err = files.enter_context(open(stderr, "wb")) if stderr else None
        try:
            code = call(argv, cwd=cwd, env=full_env, stdout=out, stderr=err, timeout=timeout,
                        preexec_fn=unlimited_stack)
        except subprocess.TimeoutExpired:
            log.info(f"wasmbuild: the guest ran longer than --timeout {timeout:g} s and was stopped")
            return TIMEOUT_EXIT
    return code if code >= 0 else 128 - code
