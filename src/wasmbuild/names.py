"""Names the command line offers before anything heavy is imported (so `wasmbuild run` starts fast): the
registered targets and the toolchain routes. The registries themselves (wasmbuild.targets.TARGETS,
wasmbuild.toolchain) are checked against these by the unit tests."""

from __future__ import annotations

TARGET_NAMES = ("wasi", "emscripten")
ROUTES = ("auto", "release", "debian", "path")
