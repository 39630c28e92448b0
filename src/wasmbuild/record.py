"""The build record (BUILD.json): a typed, versioned value assembled from the pipeline's step results.

Its fields are documented once, in FIELDS (the README's table is checked against it). The record's JSON is the
archive's first member and its bytes are part of the artifact: field order and content are fixed, and a change
to either needs a new RECORD_FORMAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RECORD_FORMAT = 1
RECORD_NAME = "BUILD.json"

# Every top-level field, in the record's order, with its meaning (the README's table shows this).
FIELDS: dict[str, str] = {
    "format": "record format version (1)",
    "wasmbuild": "version of the tool that made it",
    "python": "what was built: `implementation` (`cpython`) and `version` (`3.13.15`)",
    "target": "the target's `name` (`wasi`, `emscripten`) and `triple` (`wasm32-wasip1`)",
    "recipe": "the recipe file it was built from (`cpython-3.13.yaml`)",
    "source_date_epoch": "the fixed timestamp used for every mtime",
    "inputs": "every input: name, role, `url` it was fetched from, `route` (`upstream`, `mirror-dir`, `debian`), "
              "`sha256`, `size`",
    "toolchain": "name, version, route (`release`, `debian`, `path`), components, its inputs (and its patches)",
    "build_python": "the native compiler (`cc`) and machine (`host`) of the build-python",
    "patches": "file, sha256, reason, upstream link of each CPython patch",
    "configure": "configure arguments, `CONFIG_SITE`, autoconf cache overrides, CFLAGS/LDFLAGS (paths as "
                 "placeholders), the target's extras (libraries, make arguments, Setup.local lines)",
    "stdlib": "what was left out of the standard library, `.pyc` mode",
    "artifact": "sha256 and size of `python.wasm`, names of the debuginfo and `-dev` archives, launcher, the "
                "target's extras (wasm stack size; `python.js`, node, libraries), the cross-build `kit` (its paths, "
                "the `-dev` archive's libraries, the embed link line); after `wasmbuild link`, `linked_modules`",
}


@dataclass(frozen=True)
class BuildRecord:
    """One artifact's record; `to_json()` gives BUILD.json's content in FIELDS order."""

    wasmbuild: str
    python: dict[str, str]
    target: dict[str, str]
    recipe: str
    source_date_epoch: int
    inputs: list[dict[str, Any]]
    toolchain: dict[str, Any]
    build_python: dict[str, str]
    patches: list[dict[str, str]]
    configure: dict[str, Any]
    stdlib: dict[str, Any]
    artifact: dict[str, Any]
    format: int = RECORD_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}
