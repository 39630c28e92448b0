"""Provisioning of toolchains: shared pieces (host platform, recorded inputs, route selection)."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
