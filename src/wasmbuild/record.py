"""The build record (BUILD.json): a typed, versioned value assembled from the pipeline's step results.

Its fields are documented once, in FIELDS (the README's table is checked against it). The record's JSON is the
archive's first member and its bytes are part of the artifact: field order and content are fixed, and a change
to either needs a new RECORD_FORMAT.

The record names every input by identity (name, sha256, size, canonical url), never by where this build fetched
it from: the same inputs give the same archive whatever route fetched them. Where each input came from (the
`fetch` of an input while the record is assembled) goes to the provenance file beside the archive instead
(`split_provenance`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild.errors import SmokeTestError

RECORD_FORMAT = 2
# Format 2: inputs by identity only; route and fetched-from url moved to the provenance file.
PROVENANCE_FORMAT = 1
# The key under which an input carries how this build fetched it ({"route", "url"}): never in the record.
FETCH = "fetch"
RECORD_NAME = "BUILD.json"

# Every top-level field, in the record's order, with its meaning (the README's table shows this).
FIELDS: dict[str, str] = {
    "format": "record format version (2)",
    "wasmbuild": "version of the tool that made it",
    "python": "what was built: `implementation` (`cpython`) and `version` (`3.13.15`)",
    "target": "the target's `name` (`wasi`, `emscripten`) and `triple` (`wasm32-wasip1`); a variant's `variant` "
              "(`web`)",
    "recipe": "the recipe file it was built from (`cpython-3.13.yaml`)",
    "source_date_epoch": "the fixed timestamp used for every mtime",
    "inputs": "every input by identity: name, role, canonical `url` (upstream, or `debian:<pool path>` for a "
              "Debian package), `sha256`, `size` (where this build fetched each one: the provenance file)",
    "toolchain": "name, version, route (`release`, `debian`, `path`), components, its inputs (and its patches)",
    "build_python": "the native compiler (`cc`) and machine (`host`) of the build-python",
    "patches": "file, sha256, reason, upstream link of each CPython patch",
    "configure": "configure arguments, `CONFIG_SITE`, autoconf cache overrides, CFLAGS/LDFLAGS (paths as "
                 "placeholders), the target's extras (libraries, make arguments, Setup.local lines; the web variant's "
                 "`web_link`: the flags its link removes and adds)",
    "stdlib": "what was left out of the standard library, `.pyc` mode (the web variant: `form`, .py or .pyc)",
    "artifact": "sha256 and size of `python.wasm`, names of the debuginfo and `-dev` archives, launcher, the "
                "target's extras (wasm stack size; `python.js`, node, libraries; the web variant's `python.mjs` and "
                "its file package `python.data`), the cross-build `kit` (its paths, the `-dev` archive's libraries, "
                "the embed link line); after `wasmbuild link`, `linked_modules`",
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
        """BUILD.json's content: every field, inputs by identity only."""
        return split_provenance({name: getattr(self, name) for name in FIELDS})[0]

    def provenance(self, archive: str) -> dict[str, Any]:
        """The provenance file's content: how this build fetched each input (route and url), by identity."""
        return {"format": PROVENANCE_FORMAT, "artifact": archive,
                "inputs": split_provenance({name: getattr(self, name) for name in FIELDS})[1]}


def split_provenance(value: Any) -> tuple[Any, list[dict[str, Any]]]:
    """`value` without any input's FETCH entry, and those entries as {name, sha256, route, url} (record order)."""
    found: list[dict[str, Any]] = []

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if isinstance(v.get(FETCH), dict):
                found.append({"name": v.get("name") or v.get("file"), "sha256": v.get("sha256"), **v[FETCH]})
            return {k: walk(x) for k, x in v.items() if k != FETCH}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value), found


def read_record(root: Path, artifact: Path) -> dict:
    """The BUILD.json of the artifact unpacked at `root` (from `artifact`) with the fields the checks and `wasmbuild
    link` read; a missing or malformed one is one error."""
    path = root / RECORD_NAME
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fields = (record["python"]["version"], record["target"]["name"], record["target"]["triple"],
                  record["artifact"]["python.wasm"]["sha256"])
        if not all(isinstance(f, str) for f in fields):
            raise TypeError("not a string")
    except FileNotFoundError:
        raise SmokeTestError(f"{artifact}: no BUILD.json (not a wasmbuild artifact, or an incomplete one)",
                             hint="use an archive from dist/ or rebuild it") from None
    except (OSError, ValueError) as exc:
        raise SmokeTestError(f"{artifact}: BUILD.json is not valid JSON: {exc}",
                             hint="use an archive from dist/ or rebuild it") from None
    except (KeyError, TypeError, IndexError) as exc:
        raise SmokeTestError(f"{artifact}: BUILD.json lacks python.version, target.name/triple or "
                             f"artifact.python.wasm.sha256 ({exc.__class__.__name__}: {exc})",
                             hint="use an archive from dist/ or rebuild it") from None
    return record
