"""Provisioning of toolchains: shared pieces (host platform, recorded inputs, route selection)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild.download import Sources, fetch
from wasmbuild.errors import ToolchainError
from wasmbuild.recipe import Download, ToolchainManifest

ROUTES = ("auto", "release", "debian", "path")


def host_platform() -> str:
    system = {"Linux": "linux", "Darwin": "macos"}.get(platform.system(), platform.system().lower())
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}-{machine}"


@dataclass
class Toolchain:
    """A provisioned toolchain and how it was obtained (for the build record)."""

    name: str
    version: str
    path: Path
    route: str
    components: dict[str, str] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    # Patches applied to the provisioned toolchain: file, sha256, reason, upstream.
    patches: list[dict[str, str]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        record = {
            "name": self.name,
            "version": self.version,
            "route": self.route,
            "components": self.components,
            "inputs": self.inputs,
        }
        if self.patches:
            record["patches"] = self.patches
        return record


def debian_inputs(manifest: ToolchainManifest) -> list[dict[str, Any]]:
    """The build record's view of a manifest's pinned Debian packages."""
    return [
        {"name": p.filename, "package": p.name, "version": p.version, "suite": p.suite, "sha256": p.sha256,
         "size": p.size, "route": "debian", "url": f"debian:{p.path}"}
        for p in manifest.debian_packages
    ]


def fetch_debs(manifest: ToolchainManifest, cache_root: Path, sources: Sources) -> list[Path]:
    """Verified local copies of the manifest's .debs (from the Debian mirror, or a local mirror directory)."""
    mirror = sources.debian_mirror
    if not mirror:
        raise ToolchainError(
            "the Debian route needs a Debian mirror and none is configured",
            hint="set --debian-mirror / WASMBUILD_DEBIAN_MIRROR, or configure apt",
        )
    # The deb's own url is the mirror; a local mirror directory may hold it too.
    deb_sources = Sources(mirror_dir=sources.mirror_dir, debian_mirror=None, upstream=True)
    return [fetch(Download(url=f"{mirror.rstrip('/')}/{p.path}", sha256=p.sha256, size=p.size), cache_root,
                  deb_sources).path
            for p in manifest.debian_packages]
