"""Verified downloads: stream + hash, temporary file renamed only after the sha256 (and size) match.

The sha256 is the identity of an input; urls are only hints. `fetch()` tries, in order: a verified copy
already in the cache, the upstream url, a local mirror directory, the Debian archive of the configured
mirror. Nothing unverified is ever returned.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests

from wasmbuild import log
from wasmbuild.cache import sha256_file
from wasmbuild.errors import ChecksumError, DownloadError
from wasmbuild.recipe import Download

CHUNK = 1 << 16
TIMEOUT = (15, 60)  # connect, read (seconds)
RETRIES = 3
BACKOFF = 1.0  # seconds; doubled after each failed attempt
USER_AGENT = "wasmbuild/0.1 (+reproducible CPython WebAssembly builds)"


class _Permanent(DownloadError):
    """Not worth retrying (4xx, no such host, checksum mismatch)."""


@dataclass(frozen=True)
class Sources:
    """Where to look for inputs besides their upstream url."""

    mirror_dir: Path | None = None
    debian_mirror: str | None = None
    upstream: bool = True


def _verify_stream_target(tmp: Path, url: str, sha256: str, size: int | None, digest: str, got: int) -> None:
    if size is not None and got != size:
        raise ChecksumError(
            f"size mismatch for {url}: expected {size} bytes, got {got} (truncated or wrong file)",
        )
    if digest != sha256:
        raise ChecksumError(
            f"sha256 mismatch for {url}:\n  expected {sha256}\n  actual   {digest} ({got} bytes)",
            hint="the file differs from the pinned one; if upstream re-published it, update the recipe "
            "only after checking why",
        )


def _fetch_once(url: str, tmp: Path, sha256: str, size: int | None, label: str) -> None:
    digest = hashlib.sha256()
    got = 0
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        source = Path(urllib.parse.unquote(parsed.path))
        try:
            with open(source, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(CHUNK * 16):
                    digest.update(block)
                    got += len(block)
                    out.write(block)
        except FileNotFoundError:
            raise _Permanent(f"{url}: no such file") from None
    else:
        try:
            response = requests.get(url, stream=True, timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})
        except requests.exceptions.ConnectionError as exc:
            text = str(exc)
            if "NameResolutionError" in text or "Name or service not known" in text or "getaddrinfo" in text:
                raise _Permanent(f"{url}: host not found (no network route?)") from None
            raise DownloadError(f"{url}: connection failed: {exc.__class__.__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise DownloadError(f"{url}: {exc.__class__.__name__}: {exc}") from None
        with response:
            if 400 <= response.status_code < 500:
                raise _Permanent(f"{url}: HTTP {response.status_code} {response.reason}")
            if response.status_code >= 500:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
            total = size or int(response.headers.get("Content-Length") or 0) or None
            progress = log.Progress(label, total)
            try:
                with open(tmp, "wb") as out:
                    for block in response.iter_content(CHUNK):
                        digest.update(block)
                        got += len(block)
                        out.write(block)
                        progress.update(len(block))
                        if size is not None and got > size:
                            raise _Permanent(f"{url}: more than the expected {size} bytes")
            except requests.exceptions.RequestException as exc:
                raise DownloadError(
                    f"{url}: transfer interrupted after {got} bytes ({exc.__class__.__name__})"
                ) from None
            finally:
                progress.close()
    try:
        _verify_stream_target(tmp, url, sha256, size, digest.hexdigest(), got)
    except ChecksumError as exc:
        if size is not None and got < size:
            raise DownloadError(str(exc)) from None  # truncated: a retry may help
        raise


def download(url: str, dest: Path, sha256: str, size: int | None = None, *, retries: int = RETRIES) -> Path:
    """Download `url` to `dest`, verified. `dest` appears only when the bytes match."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.part-*"):  # left by a killed run (we hold the cache lock)
        stale.unlink(missing_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    delay = BACKOFF
    last: DownloadError | None = None
    try:
        for attempt in range(1, retries + 1):
            try:
                _fetch_once(url, tmp, sha256, size, dest.name)
                tmp.replace(dest)
                return dest
            except (_Permanent, ChecksumError):
                raise
            except DownloadError as exc:
                last = exc
                if attempt < retries:
                    log.warn(f"{exc}; retrying in {delay:.1f}s ({attempt}/{retries})")
                    time.sleep(delay)
                    delay *= 2
        assert last is not None
        raise last
    finally:
        tmp.unlink(missing_ok=True)


def cache_path(cache_root: Path, item: Download) -> Path:
    return cache_root / "downloads" / item.sha256[:16] / item.name


def verified_cached(path: Path, item: Download) -> bool:
    """A cached file is reused only after its hash and size are checked again."""
    if not path.is_file():
        return False
    if (item.size is not None and path.stat().st_size != item.size) or sha256_file(path) != item.sha256:
        log.warn(f"cached {path} does not match its pinned sha256; deleting it and fetching again")
        path.unlink()
        return False
    return True


def candidate_urls(item: Download, sources: Sources) -> list[tuple[str, str]]:
    """(route, url) pairs in the order they are tried."""
    urls: list[tuple[str, str]] = []
    if sources.upstream:
        urls.append(("upstream", item.url))
    if sources.mirror_dir:
        urls.append(("mirror-dir", (sources.mirror_dir / item.name).resolve().as_uri()))
    if sources.debian_mirror and item.debian:
        urls.append(("debian", sources.debian_mirror.rstrip("/") + "/" + item.debian.lstrip("/")))
    return urls


@dataclass(frozen=True)
class Fetched:
    path: Path
    route: str
    url: str


def fetch(item: Download, cache_root: Path, sources: Sources) -> Fetched:
    """Return a verified local copy of `item`, trying every route in order."""
    dest = cache_path(cache_root, item)
    marker = dest.with_name(dest.name + ".route")
    if verified_cached(dest, item):
        route, _, url = (marker.read_text().partition(" ") if marker.exists() else ("cache", "", item.url))
        return Fetched(dest, route or "cache", url or item.url)
    failures: list[tuple[str, DownloadError]] = []
    for route, url in candidate_urls(item, sources):
        log.info(f"  fetching {item.name} ({route}): {url}")
        try:
            download(url, dest, item.sha256, item.size)
        except ChecksumError as exc:
            # A mirror serving different bytes is worth reporting loudly, then try the next one.
            log.warn(str(exc))
            failures.append((route, exc))
            continue
        except DownloadError as exc:
            failures.append((route, exc))
            continue
        marker.write_text(f"{route} {url}")
        return Fetched(dest, route, url)
    detail = "\n".join(f"  - {route}: {exc}" for route, exc in failures) or "  (no route configured)"
    # Only when every route delivered wrong bytes is this a checksum failure (never fall back from it silently).
    cls = ChecksumError if failures and all(isinstance(e, ChecksumError) for _, e in failures) else DownloadError
    raise cls(
        f"could not obtain {item.name} (sha256 {item.sha256}):\n{detail}",
        hint="check the network, or put the file in a directory given by --mirror-dir / "
        "WASMBUILD_MIRROR_DIR, or set --debian-mirror / WASMBUILD_DEBIAN_MIRROR",
    )
