"""The Debian route: find the machine's configured mirror in its apt configuration, unpack .deb files.

The mirror's host name is never written into this repository: it is read from
/etc/apt/sources.list{,.d/*.list,.d/*.sources}, or given with --debian-mirror / WASMBUILD_DEBIAN_MIRROR.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from wasmbuild.archive import expansion_limit, safe_extract
from wasmbuild.errors import ArchiveError
from wasmbuild.process import capture

DEBIAN_SUITES = re.compile(r"^(bookworm|trixie|forky|sid|unstable|testing|stable|oldstable|bullseye|experimental)")


def _deb822_paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
            continue
        if raw[0] in " \t" and key:
            current[key] += " " + raw.strip()
            continue
        key, _, value = raw.partition(":")
        key = key.strip().lower()
        current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _sources_entries(apt_dir: Path) -> list[tuple[list[str], str, list[str]]]:
    """(types, uri, suites) for every enabled entry of the apt configuration."""
    entries = []
    files = []
    main = apt_dir / "sources.list"
    if main.is_file():
        files.append(main)
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in {".list", ".sources"})
    for file in files:
        try:
            text = file.read_text(errors="replace")
        except OSError:
            continue
        if file.suffix == ".sources":
            for para in _deb822_paragraphs(text):
                if para.get("enabled", "yes").lower() == "no":
                    continue
                types = para.get("types", "").split()
                for uri in para.get("uris", "").split():
                    entries.append((types, uri, para.get("suites", "").split()))
        else:
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...]
                fields = line.split()
                if len(fields) >= 3 and fields[0] in {"deb", "deb-src"}:
                    entries.append(([fields[0]], fields[1], [fields[2]]))
    return entries


def discover_mirror(apt_dir: Path = Path("/etc/apt")) -> str | None:
    """The base url of the Debian archive apt uses (not the security archive), or None."""
    best = None
    for types, uri, suites in _sources_entries(apt_dir):
        if not ({"deb", "deb-src"} & set(types)):
            continue
        if not uri.startswith(("http://", "https://", "file:/")):
            continue
        if any(s.endswith("-security") or "/" in s for s in suites) or "security" in uri:
            continue
        if not any(DEBIAN_SUITES.match(s) for s in suites):
            continue
        uri = uri.rstrip("/")
        if uri.endswith("/debian"):
            return uri
        best = best or uri
    return best


def resolve_mirror(option: str | None, apt_dir: Path = Path("/etc/apt")) -> str | None:
    return option or os.environ.get("WASMBUILD_DEBIAN_MIRROR") or discover_mirror(apt_dir)


def _ar_members(data: bytes) -> dict[str, bytes]:
    if not data.startswith(b"!<arch>\n"):
        raise ArchiveError("not a Debian package (no ar signature)")
    members = {}
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        pos += 60
        members[name] = data[pos : pos + size]
        pos += size + (size & 1)
    return members


def extract_deb(deb: Path, dest: Path) -> None:
    """Unpack the data part of a .deb into `dest` without dpkg and without root."""
    try:
        members = _ar_members(deb.read_bytes())
    except (ValueError, IndexError) as exc:
        raise ArchiveError(f"{deb.name}: corrupt ar archive: {exc}") from None
    for name, payload in members.items():
        if not name.startswith("data.tar"):
            continue
        try:
            if name.endswith(".zst"):
                zstd = shutil.which("zstd")
                if not zstd:
                    raise ArchiveError(f"{deb.name}: data is zstd-compressed and 'zstd' is not installed")
                payload = capture([zstd, "-dc"], input=payload, text=False, check=True).stdout
            elif name.endswith(".xz"):
                payload = lzma.decompress(payload)
            with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as tar:
                safe_extract(tar, dest, label=deb.name, max_bytes=expansion_limit(deb.stat().st_size))
        except (lzma.LZMAError, tarfile.TarError, EOFError, subprocess.CalledProcessError) as exc:
            raise ArchiveError(f"{deb.name}: unreadable {name}: {exc}") from None
        return
    raise ArchiveError(f"{deb.name}: no data.tar member")
