"""The release index (`release.json`, written by `nox -s release` into dist/ and listed in SHA256SUMS): one entry
per artifact that built, passed its smoke test and ended its test suite as expected.

    {"format": 1,
     "wasmbuild": {"version": "0.1.0", "commit": "<git commit of the checkout, or null>"},
     "artifacts": [{"python", "target", "triple", "file", "sha256", "size", "build_json_sha256", "record", "sbom",
                    "companions": [{"kind": "dev"|"debuginfo", "file", "sha256", "size"}], "tests": {...}}]}

`build_json_sha256` is the sha256 of the archive's BUILD.json member, the same bytes as `<name>.BUILD.json`
beside it. The index is deterministic: artifacts sorted by file name, keys in this order.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wasmbuild import __version__, cache
from wasmbuild.files import write_json

INDEX_NAME = "release.json"
INDEX_FORMAT = 1
SBOM_SUFFIX = ".cdx.json"


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
