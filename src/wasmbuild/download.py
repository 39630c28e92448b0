"""Verified downloads: stream + hash, temporary file renamed only after the sha256 (and size) match.

The sha256 is the identity of an input; urls are only hints. `fetch()` tries, in order: a verified copy
already in the cache, the upstream url, a local mirror directory, the Debian archive of the configured
mirror. Nothing unverified is ever returned.

An interrupted transfer is resumed: the bytes received so far stay in the temporary file, and the next attempt
hashes them and asks the server for the rest (`Range: bytes=N-`), appending on `206 Partial Content` and starting
over on a plain `200`. Within one call the retries resume; with `partial=` (a stable path) a later call does too:
`fetch()` keeps them beside the cache entry (`.<name>.partial`), `wasmbuild download` under the cache's
`releases/partial/`. Bytes whose final hash does not match are deleted.

Every transfer, small documents (`read_url`) included, is bounded: a size limit, a deadline for the response's
status line and headers (HEAD_DEADLINE), and a throughput guard (MIN_RATE bytes/s averaged over RATE_WINDOW,
WASMBUILD_MIN_RATE) that ends a server dripping its body a byte at a time within the per-read timeout.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import os
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from wasmbuild import log
from wasmbuild.cache import sha256_file
from wasmbuild.errors import ChecksumError, DownloadError, UsageError
from wasmbuild.files import atomic_open
from wasmbuild.recipe import Download

# requests is imported where a download starts: commands that never download (wasmbuild run) start faster.
if TYPE_CHECKING:
    import requests

T = TypeVar("T")
CHUNK = 1 << 16
TIMEOUT = (15, 60)  # connect, read (seconds): the longest silence tolerated
MIN_RATE = 16 << 10  # bytes/s averaged over RATE_WINDOW, else the transfer is aborted; WASMBUILD_MIN_RATE, 0 = off
RATE_WINDOW = 30.0  # seconds
# The response's status line and headers must arrive within this (seconds): the per-read timeout alone lets a server
# drip them a byte at a time for ever.
HEAD_DEADLINE = 60.0
MAX_UNSIZED = 8 << 30  # bytes: the ceiling for an input pinned without a size or max_size
RETRIES = 3
BACKOFF = 1.0  # seconds; doubled after each failed attempt
USER_AGENT = "wasmbuild/0.1 (+reproducible CPython WebAssembly builds)"
# The sha256 is of the bytes as served: never ask for (nor undo) a transfer encoding such as gzip.
HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}


class _Permanent(DownloadError):
    """Not worth retrying (4xx, no such host, bad url, too large, checksum mismatch)."""


class NotFound(_Permanent):
    """The url names nothing there (HTTP 404 or 410, no such file)."""


def min_rate() -> int:
    """MIN_RATE, or WASMBUILD_MIN_RATE (bytes/s) when set; 0 disables the check."""
    value = os.environ.get("WASMBUILD_MIN_RATE", "").strip()
    if not value:
        return MIN_RATE
    try:
        rate = int(value)
        if rate < 0:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"WASMBUILD_MIN_RATE={value!r}: expected a whole number of bytes per second (0 disables the check)"
        ) from None
    return rate


class _RateGuard:
    """Aborts (retryably) a transfer averaging under `rate` bytes/s over the last RATE_WINDOW seconds."""

    def __init__(self, url: str, rate: int, total: int | None, start: int = 0) -> None:
        self.url, self.rate, self.total = url, rate, total
        self.window = RATE_WINDOW
        # (time, bytes so far), oldest first; `start` bytes were kept from an earlier attempt (a resumed transfer).
        self.samples = collections.deque([(time.monotonic(), start)])

    def check(self, got: int) -> None:
        if not self.rate:
            return
        now = time.monotonic()
        samples = self.samples
        if now - samples[-1][0] >= self.window / 8:
            samples.append((now, got))
        while len(samples) > 1 and now - samples[1][0] >= self.window:
            samples.popleft()  # samples[0] stays the newest one at least a window old
        since, had = samples[0]
        if now - since >= self.window and (got - had) / (now - since) < self.rate:
            raise DownloadError(
                f"{self.url}: transfer too slow: {(got - had) / (now - since):.0f} bytes/s over the last "
                f"{now - since:.1f}s, under the minimum of {self.rate} bytes/s, after {_progress(got, self.total)}"
                " (WASMBUILD_MIN_RATE=0 disables the check)"
            )


def _progress(got: int, total: int | None) -> str:
    return f"{got} of {total} bytes" if total is not None else f"{got} bytes"


def _limit(size: int | None, max_size: int | None) -> tuple[int, str]:
    """The most bytes a download may have, and how to name that limit in a message."""
    limits = []
    if size is not None:
        limits.append((size, f"the expected {size} bytes"))
    if max_size is not None:
        limits.append((max_size, f"its max_size of {max_size} bytes"))
    if not limits:
        limits.append((MAX_UNSIZED, f"{MAX_UNSIZED} bytes, the ceiling for an input without a pinned size "
                                    "(MAX_UNSIZED; pin its size or max_size)"))
    return min(limits)


def _request_error(url: str, exc: requests.exceptions.RequestException) -> DownloadError:
    """The failure of a request that got no usable response, permanent when a retry cannot help."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "NameResolutionError" in text or "Name or service not known" in text or "getaddrinfo" in text:
            return _Permanent(f"{url}: host not found (no network route?)")
        return DownloadError(f"{url}: connection failed: {exc.__class__.__name__}")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return _Permanent(f"{url}: redirect loop (more than {requests.models.DEFAULT_REDIRECT_LIMIT} redirects)")
    if isinstance(exc, requests.exceptions.InvalidSchema):
        return _Permanent(f"{url}: unsupported url scheme, here or in a redirect: {exc} (only http and https "
                          "urls are fetched over the network)")
    if isinstance(exc, (requests.exceptions.MissingSchema, requests.exceptions.InvalidURL)):
        return _Permanent(f"{url}: not a valid url: {exc}")
    return DownloadError(f"{url}: {exc.__class__.__name__}: {exc}")


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


def _client_error(url: str, response: requests.Response) -> _Permanent:
    cls = NotFound if response.status_code in (404, 410) else _Permanent
    return cls(f"{url}: HTTP {response.status_code} {response.reason}")


def _content_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$")


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total length) of a Content-Range header, each None when absent or unknown."""
    m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if not m:
        return None, None
    return (int(m[1]) if m[1] else None), (int(m[2]) if m[2] != "*" else None)


def _kept(tmp: Path, limit: int) -> tuple[int, hashlib._Hash]:
    """The bytes an earlier attempt left in `tmp` (their count and their hash), to resume from. More than the limit
    (a different file) are deleted."""
    digest = hashlib.sha256()
    try:
        have = tmp.stat().st_size if tmp.is_file() else 0
    except OSError:
        have = 0
    if have > limit:
        tmp.unlink(missing_ok=True)
        return 0, digest
    if have:
        with open(tmp, "rb") as kept:
            while block := kept.read(CHUNK * 16):
                digest.update(block)
    return have, digest


def _fetch_once(url: str, tmp: Path, sha256: str, size: int | None, label: str, *, max_size: int | None = None,
                rate: int = 0) -> None:
    import requests

    digest = hashlib.sha256()
    got = 0
    offset = 0  # bytes kept from an earlier attempt that this one resumed from
    limit, limit_text = _limit(size, max_size)
    try:
        parsed = urllib.parse.urlparse(url)
    except ValueError as exc:  # e.g. an unclosed [ipv6
        raise _Permanent(f"{url}: not a valid url: {exc}") from None
    if parsed.scheme == "file":
        source = Path(urllib.parse.unquote(parsed.path))
        if source.is_dir():
            raise _Permanent(f"{url}: {source} is a directory, not a file")
        try:
            with open(source, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(CHUNK * 16):
                    digest.update(block)
                    got += len(block)
                    if got > limit:
                        tmp.unlink(missing_ok=True)
                        raise _Permanent(f"{url}: more than {limit_text}")
                    out.write(block)
        except FileNotFoundError:
            raise NotFound(f"{url}: no such file") from None
    else:
        offset, digest = _kept(tmp, limit)
        got = offset
        # A whole file kept (a run stopped after the last byte, before the rename): only its hash is left to check.
        whole = offset > 0 and offset == size
        headers = {**HEADERS, "Range": f"bytes={offset}-"} if offset and not whole else HEADERS
        try:
            response = None if whole else _get(url, headers)
        except requests.exceptions.RequestException as exc:
            raise _request_error(url, exc) from None
        with contextlib.nullcontext() if response is None else response:
            if response is None:
                pass
            elif response.status_code == 416 and offset:  # Range Not Satisfiable: we hold the whole file, or junk
                if _content_range(response)[1] != offset:
                    tmp.unlink(missing_ok=True)
                    raise DownloadError(f"{url}: the server cannot resume at byte {offset} (HTTP 416); the kept "
                                        "bytes were deleted, the next attempt starts over")
            elif 400 <= response.status_code < 500:
                raise _client_error(url, response)
            elif response.status_code >= 500:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
            else:
                if offset and response.status_code == 206:
                    first = _content_range(response)[0]
                    if first != offset:
                        tmp.unlink(missing_ok=True)
                        raise DownloadError(f"{url}: asked to resume at byte {offset}, the server sent a range "
                                            f"starting at {first}; the kept bytes were deleted, the next attempt "
                                            "starts over")
                elif offset:  # a plain 200: the server sends the whole file again
                    offset, digest = 0, hashlib.sha256()
                got = _receive(url, response, tmp, digest, offset, size, limit, limit_text, label, rate)
    try:
        _verify_stream_target(tmp, url, sha256, size, digest.hexdigest(), got)
    except ChecksumError as exc:
        if size is not None and got < size:
            raise DownloadError(str(exc)) from None  # truncated: a retry may help
        if offset:  # the kept bytes were not the start of this file: start over
            tmp.unlink(missing_ok=True)
            raise DownloadError(f"{exc}\n  (after resuming at byte {offset}: the kept bytes were deleted, the next "
                                "attempt starts over)") from None
        raise


def _receive(url: str, response: requests.Response, tmp: Path, digest: hashlib._Hash, offset: int,
             size: int | None, limit: int, limit_text: str, label: str, rate: int) -> int:
    """Stream the body of `response` into `tmp`, after the `offset` bytes kept there (0: from the start), hashing it
    into `digest`. Returns the byte count of the whole file."""
    import requests
    import urllib3

    got = offset
    # Raw bytes (decode_content=False): the Content-Length counts them, and they are what is pinned.
    announced = _content_length(response)  # of a 206: the rest of the file
    end = None if announced is None else offset + announced
    if end is not None and end > limit:
        tmp.unlink(missing_ok=True)  # kept bytes of a file that is not this one
        raise _Permanent(f"{url}: more than {limit_text} (the server announces {end})")
    total = size if size is not None else end
    # read1 returns what has arrived (urllib3 2.x); read() waits for a whole CHUNK (urllib3 1.x).
    read = getattr(response.raw, "read1", None) or response.raw.read
    guard = _RateGuard(url, rate, total, start=offset)
    progress = log.Progress(label, total)
    if offset:
        log.info(f"  resuming {label} at byte {offset}" + (f" of {total}" if total is not None else ""))
        progress.update(offset)
    try:
        with open(tmp, "ab" if offset else "wb") as out:
            while block := read(CHUNK, decode_content=False):
                digest.update(block)
                got += len(block)
                if got > limit:
                    tmp.unlink(missing_ok=True)
                    raise _Permanent(f"{url}: more than {limit_text}")
                out.write(block)
                progress.update(len(block))
                guard.check(got)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise DownloadError(
            f"{url}: transfer interrupted after {_progress(got, total)} ({exc.__class__.__name__})"
        ) from None
    finally:
        progress.close()
    if end is not None and got < end:  # urllib3 1.x does not check the Content-Length
        raise DownloadError(f"{url}: transfer interrupted after {_progress(got, total)} (connection closed)")
    return got


def _place(tmp: Path, dest: Path) -> None:
    """Rename `tmp` to `dest`; across file systems (a partial file kept in the cache), copy then rename."""
    try:
        tmp.replace(dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with open(tmp, "rb") as src, atomic_open(dest) as out:
            shutil.copyfileobj(src, out, CHUNK * 16)
        tmp.unlink()


def _missing_folders(path: Path) -> list[Path]:
    """`path` and its parents that do not exist yet, deepest first."""
    return [d for d in (path, *path.parents) if not d.exists()]


def download(url: str, dest: Path, sha256: str, size: int | None = None, *, max_size: int | None = None,
             retries: int = RETRIES, partial: Path | None = None) -> Path:
    """Download `url` to `dest`, verified. `dest` appears only when the bytes match.

    At most `size` (exact) or `max_size` bytes are accepted, MAX_UNSIZED when neither is given. A retry resumes
    the interrupted transfer. `partial`: a stable path (the caller holds a lock on it) where the bytes received so
    far stay when this call fails or is interrupted, for the next call to resume from; they are deleted when they
    are known to be wrong (a hash mismatch, more bytes than expected, a refused range). Without `partial`, a failure
    leaves no file behind. Nor does it leave the folders this call created (unless they hold the partial file)."""
    rate = min_rate()
    created = _missing_folders(dest.parent)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.part-*"):  # left by a killed run (we hold the cache lock)
        stale.unlink(missing_ok=True)
    created_partial: list[Path] = []
    if partial is not None:
        created_partial = _missing_folders(partial.parent)
        partial.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial or dest.with_name(f".{dest.name}.part-{os.getpid()}")
    done = False

    def attempt() -> Path:
        try:
            _fetch_once(url, tmp, sha256, size, dest.name, max_size=max_size, rate=rate)
        except ChecksumError:
            tmp.unlink(missing_ok=True)  # wrong bytes: nothing to resume from
            raise
        _place(tmp, dest)
        return dest

    try:
        result = _retrying(attempt, retries)
        done = True
        return result
    finally:
        if partial is None or (tmp.is_file() and tmp.stat().st_size == 0):
            tmp.unlink(missing_ok=True)
        if not done:
            _remove_empty(created)
            _remove_empty(created_partial)


def _get(url: str, headers: dict[str, str]) -> requests.Response:
    """`requests.get(url, stream=True)` whose response head (status line and headers) must arrive within
    HEAD_DEADLINE: the request runs on a daemon thread; past the deadline it is abandoned (a response that still
    arrives is closed) and the attempt fails as a transient DownloadError."""
    import requests

    result: dict[str, object] = {}
    abandoned = threading.Event()

    def call() -> None:
        try:
            response = requests.get(url, stream=True, timeout=TIMEOUT, headers=headers)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc
            return
        result["response"] = response
        if abandoned.is_set():
            response.close()

    thread = threading.Thread(target=call, name="wasmbuild-http-get", daemon=True)
    thread.start()
    thread.join(HEAD_DEADLINE)
    if thread.is_alive():
        abandoned.set()
        raise DownloadError(f"{url}: no complete response head (status line and headers) within "
                            f"{HEAD_DEADLINE:g} s: the server is stalling or too slow")
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    response = result["response"]
    assert isinstance(response, requests.Response)
    return response


def _read_once(url: str, limit: int, rate: int) -> bytes:
    import requests
    import urllib3

    try:
        response = _get(url, HEADERS)
    except requests.exceptions.RequestException as exc:
        raise _request_error(url, exc) from None
    with response:
        if 400 <= response.status_code < 500:
            raise _client_error(url, response)
        if response.status_code >= 500:
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
        announced = _content_length(response)
        if announced is not None and announced > limit:
            raise _Permanent(f"{url}: more than {limit} bytes (the server announces {announced})")
        body = bytearray()
        # As for an archive: read1 returns what has arrived, and the throughput guard ends a server that drips
        # the document (each byte within the read timeout, the whole never).
        read = getattr(response.raw, "read1", None) or response.raw.read
        guard = _RateGuard(url, rate, announced)
        try:
            while block := read(CHUNK, decode_content=False):
                body += block
                if len(body) > limit:
                    raise _Permanent(f"{url}: more than {limit} bytes")
                guard.check(len(body))
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise DownloadError(f"{url}: transfer interrupted after {_progress(len(body), announced)} "
                                f"({exc.__class__.__name__})") from None
        if announced is not None and len(body) < announced:
            raise DownloadError(f"{url}: transfer interrupted after {_progress(len(body), announced)} "
                                "(connection closed)")
    return bytes(body)


def read_url(url: str, limit: int, *, retries: int = RETRIES) -> bytes:
    """A small http(s) document that no hash pins (a release index, its SHA256SUMS), in memory: at most `limit`
    bytes, retried as download() retries, under the same throughput guard (MIN_RATE over RATE_WINDOW). NotFound
    when the server has no such file."""
    rate = min_rate()
    return _retrying(lambda: _read_once(url, limit, rate), retries)


def _retrying(attempt: Callable[[], T], retries: int) -> T:
    """`attempt()` until it succeeds, at most `retries` times with exponential backoff. Permanent failures
    (_Permanent, a checksum mismatch) are raised at once, the last transient one at the end."""
    delay = BACKOFF
    last: DownloadError | None = None
    for n in range(1, retries + 1):
        try:
            return attempt()
        except (_Permanent, ChecksumError):
            raise
        except DownloadError as exc:
            last = exc
            if n < retries:
                log.warn(f"{exc}; retrying in {delay:.1f}s ({n}/{retries})")
                time.sleep(delay)
                delay *= 2
    assert last is not None
    raise last


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): keep it and everything above it
            return


def cache_path(cache_root: Path, item: Download) -> Path:
    return cache_root / "downloads" / item.sha256[:16] / item.name


def verified_cached(path: Path, item: Download) -> bool:
    """A cached file is reused only after its hash and size are checked again."""
    if path.is_dir():  # a stale leftover in our cache, never something of the user's
        log.warn(f"cached {path} is a directory, not a file; removing it and fetching again")
        if path.is_symlink():
            path.unlink()
        else:
            shutil.rmtree(path)
        return False
    if not path.is_file():
        return False
    if (item.size is not None and path.stat().st_size != item.size) or sha256_file(path) != item.sha256:
        log.warn(f"cached {path} does not match its pinned sha256; deleting it and fetching again")
        path.unlink()
        return False
    return True


def candidate_urls(item: Download, sources: Sources, *, primary_route: str = "upstream") -> list[tuple[str, str]]:
    """(route, url) pairs in the order they are tried; `primary_route` names the route of the item's own url."""
    urls: list[tuple[str, str]] = []
    if sources.upstream:
        urls.append((primary_route, item.url))
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


def fetch(item: Download, cache_root: Path, sources: Sources, *, primary_route: str = "upstream") -> Fetched:
    """Return a verified local copy of `item`, trying every route in order. `primary_route` names the route of
    the item's own url in logs and in `Fetched.route` (e.g. "debian" for a .deb whose url is the Debian mirror)."""
    dest = cache_path(cache_root, item)
    marker = dest.with_name(dest.name + ".route")
    if verified_cached(dest, item):
        route, _, url = (marker.read_text().partition(" ") if marker.exists() else ("cache", "", item.url))
        return Fetched(dest, route or "cache", url or item.url)
    marker.unlink(missing_ok=True)  # it described a file that is gone
    failures: list[tuple[str, DownloadError]] = []
    for route, url in candidate_urls(item, sources, primary_route=primary_route):
        log.info(f"  fetching {item.name} ({route}): {url}")
        try:
            # The partial file is per input (its sha256), whatever the route: any route's bytes complete it.
            download(url, dest, item.sha256, item.size, max_size=getattr(item, "max_size", None),
                     partial=dest.with_name(f".{dest.name}.partial"))
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
    _remove_empty([dest.parent])  # our cache folder for this input, possibly left empty by an earlier run
    detail = "\n".join(f"  - {route}: {exc}" for route, exc in failures) or "  (no route configured)"
    # Only when every route delivered wrong bytes is this a checksum failure (never fall back from it silently).
    cls = ChecksumError if failures and all(isinstance(e, ChecksumError) for _, e in failures) else DownloadError
    raise cls(
        f"could not obtain {item.name} (sha256 {item.sha256}):\n{detail}",
        hint="check the network, or put the file in a directory given by --mirror-dir / "
        "WASMBUILD_MIRROR_DIR, or set --debian-mirror / WASMBUILD_DEBIAN_MIRROR",
    )
