"""SHA256SUMS: one `<sha256>  <file>` line per published file of dist/, as sha256sum writes them (and reads them
with `sha256sum -c`). `update_sha256sums` writes it over dist/; `parse_sums` reads one back."""

from __future__ import annotations

import re
from pathlib import Path

from wasmbuild import cache
from wasmbuild.errors import DownloadError
from wasmbuild.files import atomic_write
from wasmbuild.npm import is_npm_tarball
from wasmbuild.release.index import INDEX_NAME

SUMS_NAME = "SHA256SUMS"
SUMS_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
# Beside each archive: where this build fetched its inputs. It depends on the route, so it is not a release file
# and SHA256SUMS leaves it out (the same inputs by any route give the same SHA256SUMS).
PROVENANCE_SUFFIX = ".provenance.json"


def update_sha256sums(dist: Path) -> Path:
    lines = []
    for path in sorted(dist.iterdir()):
        if path.is_file() and (path.name == INDEX_NAME or is_npm_tarball(path.name) or path.name.startswith("cpython-")
                               and not path.name.endswith(PROVENANCE_SUFFIX)):
            lines.append(f"{cache.sha256_file(path)}  {path.name}\n")
    out = dist / "SHA256SUMS"
    atomic_write(out, "".join(lines))
    return out


def parse_sums(data: bytes, origin: str) -> dict[str, str]:
    """SHA256SUMS (`<sha256>  <file>` lines, as sha256sum writes them) as file -> sha256."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DownloadError(f"{origin}: not UTF-8 text (byte {exc.start})") from None
    sums: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = SUMS_LINE.match(line)
        if not m:
            raise DownloadError(f"{origin}: line {n}: expected '<sha256>  <file>', got {line[:100]!r}",
                                hint="SHA256SUMS is written by sha256sum (or nox -s release)")
        digest, name = m[1].lower(), m[2]
        if sums.get(name, digest) != digest:
            raise DownloadError(f"{origin}: line {n}: {name} is listed twice with different sha256")
        sums[name] = digest
    return sums

