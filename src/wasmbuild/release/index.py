"""The release index (`release.json`, written by `nox -s release` into dist/ and listed in SHA256SUMS), written and
read: one entry per artifact that built, passed its smoke test and ended its test suite as expected.

    {"format": 1,
     "wasmbuild": {"version": "0.1.0", "commit": "<git commit of the checkout, or null>"},
     "artifacts": [{"python", "target", "triple", "file", "sha256", "size", "build_json_sha256", "record", "sbom",
                    "companions": [{"kind": "dev"|"debuginfo", "file", "sha256", "size"}], "tests": {...}}]}

`build_json_sha256` is the sha256 of the archive's BUILD.json member, the same bytes as `<name>.BUILD.json`
beside it. The index is deterministic: artifacts sorted by file name, keys in this order. `load_index` reads it
back, validated (what `wasmbuild download` and `wasmbuild verify` read): every size at most MAX_ARTIFACT_SIZE
(1 GiB), no archive hidden or named like the directory it unpacks to.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import __version__, cache
from wasmbuild.errors import DownloadError, RecipeError
from wasmbuild.files import write_json
from wasmbuild.schema import CHECKS, Field, FileName, ListOf, Sha256, validate

INDEX_NAME = "release.json"
INDEX_FORMAT = 1
SBOM_SUFFIX = ".cdx.json"

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?$")
TRIPLE_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_.]+)+$")
TARGET_RE = re.compile(r"^[a-z0-9_]+$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
# The largest archive an index may list (bytes): a release's archives are tens of MB. A reader never accepts, nor
# keeps in its cache, more bytes than this for one file, whatever size an index claims.
MAX_ARTIFACT_SIZE = 1 << 30  # 1 GiB


def wasmbuild_commit(root: Path) -> str | None:
    """The commit this wasmbuild was built from: WASMBUILD_COMMIT, else `git rev-parse HEAD` of the checkout
    (None when it is not a git checkout)."""
    if env := os.environ.get("WASMBUILD_COMMIT"):
        return env
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=False, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and len(commit) == 40 else None


def _file(dist: Path, name: str) -> dict[str, Any]:
    path = dist / name
    return {"file": name, "sha256": cache.sha256_file(path), "size": path.stat().st_size}


def entry(dist: Path, record: dict[str, Any], archive: str, tests: dict[str, Any] | None) -> dict[str, Any]:
    """One artifact's entry, from its record and the files in dist/ (the archive, its BUILD.json, companions)."""
    name = archive.removesuffix(".tar.gz")
    companions = [{"kind": kind, **_file(dist, record["artifact"][kind])}
                  for kind in ("dev", "debuginfo") if record["artifact"].get(kind)]
    return {
        "python": record["python"]["version"],
        "target": record["target"]["name"],
        "triple": record["target"]["triple"],
        **_file(dist, archive),
        "build_json_sha256": cache.sha256_file(dist / f"{name}.BUILD.json"),
        "record": f"{name}.BUILD.json",
        "sbom": f"{name}{SBOM_SUFFIX}",
        "companions": companions,
        "tests": tests,
    }


def write_index(dist: Path, entries: Sequence[dict[str, Any]], commit: str | None) -> Path:
    out = dist / INDEX_NAME
    write_json(out, {"format": INDEX_FORMAT, "wasmbuild": {"version": __version__, "commit": commit},
                     "artifacts": sorted(entries, key=lambda e: e["file"])})
    return out


# --- reading it back ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Companion:
    """An archive published with an artifact: `dev` (static libraries, the same top directory) or `debuginfo`."""

    kind: str
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Entry:
    """One artifact of the index."""

    python: str  # 3.13.15
    target: str  # wasi
    triple: str  # wasm32-wasip1
    file: str  # cpython-3.13.15-wasm32-wasip1.tar.gz
    sha256: str
    size: int
    build_json_sha256: str  # of the archive's BUILD.json member (the same bytes as `record`)
    record: str | None = None  # cpython-3.13.15-wasm32-wasip1.BUILD.json
    sbom: str | None = None  # cpython-3.13.15-wasm32-wasip1.cdx.json
    companions: tuple[Companion, ...] = ()
    tests: dict[str, Any] | None = None  # the test suite's counts: selection, passed, failed, crashed, skipped

    @property
    def name(self) -> str:
        """The archive's top directory, and the directory it unpacks to."""
        return f"cpython-{self.python}-{self.triple}"

    def companion(self, kind: str) -> Companion | None:
        return next((c for c in self.companions if c.kind == kind), None)


@dataclass(frozen=True)
class Index:
    format: int
    wasmbuild_version: str
    wasmbuild_commit: str | None
    artifacts: tuple[Entry, ...]


def version_key(version: str) -> tuple[int, ...]:
    """A sort key for X.Y.Z[aN|bN|rcN] versions: alphas, betas, release candidates, then the release itself."""
    m = VERSION_RE.match(version)
    if not m:
        return (-1,)
    rank = {"a": 0, "b": 1, "rc": 2, None: 3}[m[4]]
    return int(m[1]), int(m[2]), int(m[3]), rank, int(m[5] or 0)


def _check_entry(entry: dict[str, Any]) -> tuple[str, str] | None:
    if not VERSION_RE.match(entry["python"]):
        return "python", f"expected a CPython version X.Y.Z, got {entry['python']!r}"
    if not TARGET_RE.match(entry["target"]):
        return "target", f"expected a target name (wasi, emscripten), got {entry['target']!r}"
    if not TRIPLE_RE.match(entry["triple"]):
        return "triple", f"expected a target triple (wasm32-wasip1), got {entry['triple']!r}"
    names = [entry["file"]] + [c["file"] for c in entry.get("companions", [])]
    if len(set(names)) != len(names):
        return "companions", f"an archive is named twice: {', '.join(names)}"
    # The archives are kept beside the tree they unpack to (cpython-<version>-<triple>/): never named like the tree
    # itself, never hidden (a downloader's staging directory is).
    tree = f"cpython-{entry['python']}-{entry['triple']}"
    for where, name in [("file", entry["file"]),
                        *((f"companions[{i}].file", c["file"]) for i, c in enumerate(entry.get("companions", [])))]:
        if name == tree:
            return where, f"{name!r} is the name of the directory the archive unpacks to"
        if name.startswith("."):
            return where, f"expected an archive's file name, not a hidden one, got {name!r}"
    sizes = [("size", entry["size"])] + [(f"companions[{i}].size", c["size"])
                                         for i, c in enumerate(entry.get("companions", []))]
    for where, size in sizes:
        if size > MAX_ARTIFACT_SIZE:
            return where, (f"{size} bytes is more than an archive may have ({MAX_ARTIFACT_SIZE} bytes, 1 GiB: "
                           "MAX_ARTIFACT_SIZE)")
    kinds = [c["kind"] for c in entry.get("companions", [])]
    if len(set(kinds)) != len(kinds):
        return "companions", f"a kind is given twice: {', '.join(kinds)}"
    return None


def _check_artifacts(index: dict[str, Any]) -> tuple[str, str] | None:
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(index["artifacts"]):
        key = (entry["python"], entry["target"])
        if key in seen:
            return f"artifacts[{i}]", f"CPython {key[0]} for {key[1]} is listed twice"
        seen.add(key)
    return None


COMPANION_SCHEMA = {"kind": str, "file": FileName, "sha256": Sha256, "size": int}
ENTRY_SCHEMA = {
    "python": str,
    "target": str,
    "triple": str,
    "file": FileName,
    "sha256": Sha256,
    "size": int,
    "build_json_sha256": Sha256,
    "record": Field(FileName, required=False),
    "sbom": Field(FileName, required=False),
    "companions": Field(ListOf(COMPANION_SCHEMA), required=False),
    # "tests" (a mapping or null) is checked apart: its counts are free-form.
    CHECKS: (_check_entry,),
}
INDEX_SCHEMA = {
    "format": int,
    # "commit" (40 hex digits or null) is checked apart: the validator has no null.
    "wasmbuild": {"version": str},
    "artifacts": ListOf(ENTRY_SCHEMA),
    CHECKS: (_check_artifacts,),
}
INDEX_HINT = "the location does not hold a release made by `nox -s release` (release.json, format 1)"


def _bad_index(origin: str, message: str, hint: str = INDEX_HINT) -> DownloadError:
    return DownloadError(f"{origin}: {message}", hint=hint)


def load_index(data: bytes, origin: str) -> Index:
    """The release index in `data` (the bytes of release.json), validated. `origin` (a url or path) names it in
    errors: DownloadError for anything that is not an index this wasmbuild reads."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _bad_index(origin, f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _bad_index(origin, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise _bad_index(origin, "not valid JSON (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise _bad_index(origin, f"expected a JSON object, got {type(doc).__name__}")
    if "format" not in doc:
        raise _bad_index(origin, "missing required key 'format'")
    fmt = doc["format"]
    if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt != INDEX_FORMAT:
        newer = isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > INDEX_FORMAT
        raise _bad_index(origin, f"format: unsupported format {fmt!r} (this wasmbuild reads format {INDEX_FORMAT})",
                         hint="a newer wasmbuild wrote it: upgrade wasmbuild" if newer else INDEX_HINT)
    plain = copy.deepcopy(doc)
    commit = None
    if isinstance(plain.get("wasmbuild"), dict) and "commit" in plain["wasmbuild"]:
        commit = plain["wasmbuild"].pop("commit")
        if commit is not None and not (isinstance(commit, str) and COMMIT_RE.match(commit)):
            raise _bad_index(origin, f"wasmbuild.commit: expected a git commit (40 hex digits) or null, got {commit!r}")
    tests: list[dict[str, Any] | None] = []
    artifacts = plain.get("artifacts")
    for i, entry in enumerate(artifacts if isinstance(artifacts, list) else []):
        value = entry.pop("tests", None) if isinstance(entry, dict) else None
        if value is not None and not isinstance(value, dict):
            raise _bad_index(origin, f"artifacts[{i}].tests: expected a mapping or null, got {value!r}")
        tests.append(value)
    try:
        validate(plain, INDEX_SCHEMA, origin)
    except RecipeError as exc:
        raise _bad_index(origin, str(exc).removeprefix(f"{origin}: ")) from None
    return Index(
        format=fmt,
        wasmbuild_version=plain["wasmbuild"]["version"],
        wasmbuild_commit=commit,
        artifacts=tuple(
            Entry(python=e["python"], target=e["target"], triple=e["triple"], file=e["file"], sha256=e["sha256"],
                  size=e["size"], build_json_sha256=e["build_json_sha256"], record=e.get("record"),
                  sbom=e.get("sbom"), companions=tuple(Companion(**c) for c in e.get("companions", [])),
                  tests=t)
            for e, t in zip(plain["artifacts"], tests, strict=True)
        ),
    )
