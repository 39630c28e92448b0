"""The targets and their registry: adding a target is one module here (a Target subclass) plus its recipe
entries (recipes/cpython-X.Y.yaml targets.<name>), its toolchain manifest and its expectations files. A target
built in more than one way registers one subclass per variant in VARIANTS (the first is the default, in TARGETS);
the variants share the target's recipe entry and host build."""

from __future__ import annotations

from wasmbuild.errors import UsageError
from wasmbuild.targets.base import Target
from wasmbuild.targets.emscripten import Emscripten
from wasmbuild.targets.emscripten_web import EmscriptenWeb
from wasmbuild.targets.wasi import Wasi

TARGETS: dict[str, Target] = {t.name: t for t in (Wasi(), Emscripten())}
TARGET_NAMES = tuple(TARGETS)
# Per target with variants, each variant's Target by name, the default first (names.TARGET_VARIANTS).
VARIANTS: dict[str, dict[str, Target]] = {"emscripten": {"node": TARGETS["emscripten"], "web": EmscriptenWeb()}}

__all__ = ["TARGETS", "TARGET_NAMES", "VARIANTS", "Target", "get_target"]


def get_target(name: str, variant: str | None = None) -> Target:
    """The target `name`, or its `variant` (None: the target's default)."""
    try:
        target = TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target '{name}'", hint=f"choose one of: {', '.join(TARGET_NAMES)}") from None
    if variant is None:
        return target
    variants = VARIANTS.get(name)
    if not variants:
        with_variants = ", ".join(f"{t} ({', '.join(v)})" for t, v in VARIANTS.items())
        raise UsageError(f"--variant {variant}: the {name} target has no variants",
                         hint=f"--variant applies to: {with_variants}")
    if variant not in variants:
        raise UsageError(f"--variant {variant}: the {name} target has no such variant",
                         hint=f"choose one of: {', '.join(variants)}")
    return variants[variant]

