"""Writing files: one atomic write and one JSON format for everything wasmbuild writes.

A file is written to a temporary name beside it (unique per process and thread) and renamed into place: a reader
sees the old file or the new one, never a part, and an interrupted write leaves no half-written file behind.
JSON is written one way: UTF-8, two-space indent, keys in the order the data gives them, a final newline.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temporary_name(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process and thread."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success it replaces `path`, on any failure it is removed."""
    tmp = temporary_name(path)
    try:
        with open(tmp, mode) as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write `data` (text as UTF-8) to `path` atomically; `mode` sets its permissions."""
    with atomic_open(path, "wb") as out:
        out.write(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            os.fchmod(out.fileno(), mode)


def json_text(data: Any) -> str:
    """The one JSON format (the build record's bytes depend on it: changing it changes every archive)."""
    return json.dumps(data, indent=2) + "\n"


def write_json(path: Path, data: Any) -> None:
    """`data` as JSON at `path`, atomically (the directory is created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json_text(data))
