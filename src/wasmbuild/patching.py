"""Patches: applying a recipe's or a toolchain manifest's patches to a tree, and their record."""

from __future__ import annotations

from pathlib import Path

from wasmbuild import cache
from wasmbuild.errors import PatchError
from wasmbuild.process import capture, require_tool
from wasmbuild.recipe import Patch


def apply_patches(tree: Path, patches: tuple[Patch, ...], what: str, listed_in: Path) -> None:
    """Apply `patches` (-p1) to `tree`, each checked with a dry run first; a patch that does not apply raises
    PatchError naming it (and the tree is left as the previous patches made it)."""
    if not patches:
        return
    patch = require_tool("patch", f"to apply the patches to {what}", "install patch (Debian: apt-get install patch)")
    for p in patches:
        proc = capture([patch, "-p1", "--batch", "--forward", "--dry-run", "-i", p.file], cwd=tree)
        if proc.returncode != 0:
            raise PatchError(
                f"patch {p.rel} no longer applies to {what}:\n" + proc.stdout.strip(),
                hint=f"refresh {p.file} against {what} or drop it from {listed_in.name}",
            )
        proc = capture([patch, "-p1", "--batch", "--forward", "-s", "-i", p.file], cwd=tree)
        if proc.returncode != 0:  # the dry run passed: only a write error (disk full, permissions) gets here
            raise PatchError(f"patch {p.rel} failed on {tree}: {(proc.stderr or proc.stdout).strip()}")


def patch_records(patches: tuple[Patch, ...]) -> list[dict[str, str]]:
    """The build record's (and the cache keys') view of `patches`: file, sha256, reason, upstream link."""
    return [
        {"file": p.rel, "sha256": cache.sha256_file(p.file), "reason": p.reason, "upstream": p.upstream}
        for p in patches
    ]
