"""Where `wasmbuild install` puts its result: the new artifact's tree, made beside the output, becomes a directory or a
deterministic .tar.gz with its CycloneDX SBOM beside it, each renamed into place only when complete."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wasmbuild import cache
from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.record import RECORD_NAME
from wasmbuild.release.sbom import licenses_from_project, sbom_name, write_sbom


def place_output(tree: Path, out: Path, tmp: Path, record: dict[str, Any], project: Path) -> None:
    """`tree` (in the temporary directory `tmp` beside `out`, its BUILD.json written) at `out`: renamed there, or
    archived with the record first and its SBOM (licences from `project`'s data) written beside it."""
    if out.name.endswith(".tar.gz"):
        staged = tmp / out.name
        write_deterministic_tar_gz(staged, tree, tree.name, record["source_date_epoch"], first=[RECORD_NAME])
        sbom = out.with_name(sbom_name(out))
        write_sbom(record, staged, tmp / sbom.name, licenses_from_project(project))
        os.replace(staged, out)
        os.replace(tmp / sbom.name, sbom)
    else:
        if out.exists():
            cache.remove_tree(out)
        tree.rename(out)
