"""The targets and their registry: adding a target is one module here (a Target subclass) plus its recipe
entries (recipes/cpython-X.Y.yaml targets.<name>), its toolchain manifest and its expectations files."""

from __future__ import annotations

from pathlib import Path

from wasmbuild.errors import UsageError
from wasmbuild.targets.base import Target
from wasmbuild.targets.emscripten import Emscripten
from wasmbuild.targets.wasi import Wasi

TARGETS: dict[str, Target] = {t.name: t for t in (Wasi(), Emscripten())}
TARGET_NAMES = tuple(TARGETS)

__all__ = ["TARGETS", "TARGET_NAMES", "Target", "artifact_target", "get_target"]


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target '{name}'", hint=f"choose one of: {', '.join(TARGET_NAMES)}") from None


def artifact_target(root: Path) -> Target:
    """The target whose artifact is unpacked at `root` (checked by runner's layout check first)."""
    for target in TARGETS.values():
        if target.owns(root):
            return target
    raise UsageError(f"{root} is not an artifact of any target ({', '.join(TARGET_NAMES)})")
