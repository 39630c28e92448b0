"""Provisioning toolchains: the pieces every toolchain shares.

The modules of this package: `wasi_sdk` (the WASI SDK), `emsdk` (Emscripten), `debian` (Debian's archive: the
configured mirror, .deb extraction), `hosttools` (node, tclsh, autotools for a build). Here: the toolchain
value a target's steps receive, the host platform, and the route policy written once -- `release` (upstream's
archive, or the same bytes from a mirror directory), `debian` (pinned Debian packages), `path` (a local SDK),
`auto` (a toolchain already in the cache, else the release where one is pinned and reachable, else Debian)."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import extract_tarball
from wasmbuild.download import Sources, fetch
from wasmbuild.errors import ChecksumError, DownloadError, ToolchainError, UsageError
from wasmbuild.names import ROUTES  # the one list (the command line offers it without importing this package)
from wasmbuild.recipe import Download, ReleaseAsset, ToolchainManifest
from wasmbuild.record import FETCH


def check_route(route: str) -> None:
    if route not in ROUTES:
        raise UsageError(f"unknown toolchain route '{route}'", hint=f"choose one of: {', '.join(ROUTES)}")


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
    # The deb's own url is the mirror (so its route is "debian"); a local mirror directory may hold it too.
    deb_sources = Sources(mirror_dir=sources.mirror_dir, debian_mirror=None, upstream=True)
    return [fetch(Download(url=f"{mirror.rstrip('/')}/{p.path}", sha256=p.sha256, size=p.size), cache_root,
                  deb_sources, primary_route="debian").path
            for p in manifest.debian_packages]


def release_asset(manifest: ToolchainManifest) -> ReleaseAsset | None:
    """The release archive pinned for this host, if any."""
    return next((a for a in manifest.release if a.platform == host_platform()), None)


def install_release(manifest: ToolchainManifest, cache_root: Path, sources: Sources,
                    entry_key: Callable[[ReleaseAsset], tuple[Path, str]], install: Callable[[Path], None], *,
                    hint: str) -> tuple[Path, list[dict[str, Any]]]:
    """The release route of any toolchain: the archive pinned for this host, fetched from upstream or a mirror
    directory (never the Debian mirror), verified, unpacked into the cache entry `entry_key(asset)` names and
    completed there by `install(root)` (layout, patches, sanity check). Returns the entry and the record's inputs;
    a valid entry is reused as it is."""
    asset = release_asset(manifest)
    if asset is None:
        raise ToolchainError(no_release_message(manifest), hint=hint)
    entry, key = entry_key(asset)
    record = {"name": asset.download.name, "sha256": asset.download.sha256, "size": asset.download.size,
              "url": asset.download.url}
    if cache.is_valid(entry, key):
        stamp = cache.read_stamp(entry) or {}
        return entry, [{**record, FETCH: {"route": stamp.get("fetch_route", "cache"),
                                          "url": stamp.get("url", asset.download.url)}}]
    release_sources = Sources(mirror_dir=sources.mirror_dir, debian_mirror=None, upstream=sources.upstream)
    got = fetch(asset.download, cache_root, release_sources)
    with cache.fresh_entry(entry, key, route="release", fetch_route=got.route, url=got.url) as root:
        extract_tarball(got.path, root, strip_components=asset.strip_components)
        install(root)
    return entry, [{**record, FETCH: {"route": got.route, "url": got.url}}]


def install_debian(manifest: ToolchainManifest, cache_root: Path, sources: Sources, entry: Path, key: str,
                   install: Callable[[Path, list[Path]], None], *, hint: str) -> tuple[Path, list[dict[str, Any]]]:
    """The Debian route of any toolchain: the manifest's pinned .debs, fetched and verified, handed to
    `install(root, debs)` (extraction and layout) in the cache entry `entry`. Returns the entry and the record's
    inputs; a valid entry is reused as it is."""
    plat = host_platform()
    if not manifest.debian_packages or manifest.debian_platform != plat:
        raise ToolchainError(
            f"{manifest.file.name}: the Debian route serves {manifest.debian_platform}, this host is {plat}",
            hint=hint,
        )
    inputs = debian_inputs(manifest)
    if cache.is_valid(entry, key):
        return entry, inputs
    debs = fetch_debs(manifest, cache_root, sources)
    with cache.fresh_entry(entry, key, route="debian") as root:
        install(root, debs)
    return entry, inputs


def no_release_message(manifest: ToolchainManifest) -> str:
    have = ", ".join(a.platform for a in manifest.release) or "none"
    return (f"{manifest.file.name}: no pinned release of {manifest.name} {manifest.version} for {host_platform()} "
            f"(pinned: {have})")


def provision_by_route(manifest: ToolchainManifest, route: str, sources: Sources, *,
                       release: Callable[[], Toolchain], debian: Callable[[], Toolchain],
                       release_entry: Callable[[ReleaseAsset], tuple[Path, str]],
                       debian_entry: Callable[[], tuple[Path, str]], hint: str) -> Toolchain:
    """The route policy of every toolchain (`path` is the caller's): `release` or `debian` as asked; `auto` takes
    a toolchain already in the cache (either route), else the upstream release where one is pinned for this host
    and upstream or a mirror directory is available, else Debian. A checksum mismatch is never papered over by
    another route; when every route fails, one error lists each route's reason."""
    check_route(route)
    if route == "release":
        return release()
    if route == "debian":
        return debian()
    asset = release_asset(manifest)
    if asset and cache.is_valid(*release_entry(asset)):
        return release()
    if manifest.debian_platform == host_platform() and cache.is_valid(*debian_entry()):
        return debian()
    errors = []
    if asset is None:
        errors.append(f"release route: {no_release_message(manifest)}")
    elif sources.upstream or sources.mirror_dir:
        try:
            return release()
        except ChecksumError:
            raise
        except (ToolchainError, DownloadError) as exc:
            errors.append(f"release route: {exc}")
            log.info("  release route unavailable; trying the Debian route")
    try:
        return debian()
    except (ToolchainError, DownloadError) as exc:
        errors.append(f"debian route: {exc}")
    raise ToolchainError(
        f"could not provision {manifest.name} {manifest.version}:\n" + "\n".join(f"  - {e}" for e in errors),
        hint=hint,
    )
