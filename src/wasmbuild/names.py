"""Names the command line offers before anything heavy is imported (so `wasmbuild run` starts fast): the
registered targets and the toolchain routes. The registries themselves (wasmbuild.targets.TARGETS,
wasmbuild.toolchain) are checked against these by the unit tests."""

from __future__ import annotations

TARGET_NAMES = ("wasi", "emscripten")
# The targets built in more than one way (`wasmbuild build --variant`), the first of each being its default.
TARGET_VARIANTS = {"emscripten": ("node", "web")}
VARIANT_NAMES = tuple(sorted({v for variants in TARGET_VARIANTS.values() for v in variants}))
ROUTES = ("auto", "release", "debian", "path")
# The web variant's artifact: its ES module and the standard library's file package (written by
# targets/emscripten_web.py, recognised by artifact.py).
WEB_MODULE = "python.mjs"
WEB_DATA = "python.data"
# What `wasmbuild install` adds to a web artifact (packages/web_install.py): the wheels, and their manifest, which
# the JS loader (web/wasmbuild-python.mjs) reads and `wasmbuild serve` and the npm package carry.
WEB_WHEELS = "wheels"
WEB_WHEELS_MANIFEST = "wheels.json"
