"""Small wheels made in a test from files (no network, no build backend): what installWheel and
_wasmbuild_web.install_wheel are tested with, in the unit tests (the host Python) and the integration tests (the web
artifact under node and in chromium)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(directory: Path, name: str, version: str, files: Mapping[str, str | bytes], *,
               tag: str = "py3-none-any", requires: tuple[str, ...] = (), root_is_purelib: bool = True,
               record: bool = True, extra: Mapping[str, str | bytes] | None = None,
               filename: str | None = None) -> Path:
    """directory/<name>-<version>-<tag>.whl (or `filename`) holding `files` (paths from site-packages, including
    `<name>-<version>.data/<part>/...` ones), its .dist-info (METADATA with `requires`, WHEEL, RECORD with every
    file's sha256 unless `record` is false) and `extra` members written as they are (not in RECORD)."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires)
    wheel = (f"Wheel-Version: 1.0\nGenerator: wasmbuild-tests\nRoot-Is-Purelib: {str(root_is_purelib).lower()}\n"
             + "".join(f"Tag: {t}\n" for t in _expand(tag)))
    members: dict[str, bytes] = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
    members[f"{dist_info}/METADATA"] = metadata.encode()
    members[f"{dist_info}/WHEEL"] = wheel.encode()
    lines = [f"{path},{record_hash(data)},{len(data)}" for path, data in members.items()]
    members[f"{dist_info}/RECORD"] = ("\n".join([*lines, f"{dist_info}/RECORD,,"]) + "\n").encode() if record else b""
    out = directory / (filename or f"{name}-{version}-{tag}.whl")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in {**members, **{k: v.encode() if isinstance(v, str) else v
                                         for k, v in (extra or {}).items()}}.items():
            zf.writestr(zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out


def _expand(tag: str) -> list[str]:
    python, abi, platform = tag.split("-")
    return [f"{p}-{a}-{pl}" for p in python.split(".") for a in abi.split(".") for pl in platform.split(".")]


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
