"""Small logging layer: step banners with elapsed time, echoed commands, per-step log files.

Under GitHub Actions, steps are folded with ::group::. Under CI (or when stdout is not a terminal) the
output is plain lines, never carriage-return progress bars.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


def is_ci() -> bool:
    return bool(os.environ.get("CI")) and os.environ.get("CI", "").lower() not in {"0", "false", "no"}


def is_interactive() -> bool:
    return sys.stderr.isatty() and not is_ci()


def _github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def echo_command(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> None:
    text = shlex.join(str(os.fspath(a)) for a in argv)
    where = f"  (in {cwd})" if cwd else ""
    info(f"  $ {text}{where}")


def is_verbose() -> bool:
    return os.environ.get("WASMBUILD_VERBOSE", "").lower() not in {"", "0", "false", "no"}


def debug_command(argv: Sequence[str | os.PathLike[str]], cwd: Path | None = None) -> None:
    """A command's echo for WASMBUILD_VERBOSE runs (probes and guests are not echoed otherwise)."""
    if is_verbose():
        echo_command(argv, cwd)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes}m{sec:02d}s"


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """Banner for a step; prints ✓ or ✕ with the elapsed time."""
    if _github_actions():
        info(f"::group::{title}")
    info(f"▶ {title}")
    start = time.monotonic()
    try:
        yield
    except BaseException:
        if _github_actions():
            info("::endgroup::")
        info(f"✕ {title} ({format_duration(time.monotonic() - start)})")
        raise
    if _github_actions():
        info("::endgroup::")
    info(f"✓ {title} ({format_duration(time.monotonic() - start)})")


class Progress:
    """Download progress: a redrawn bar on a terminal, a few plain lines otherwise."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.interactive = is_interactive()
        self._last_report = 0.0
        self._next_fraction = 0.25

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.interactive:
            if now - self._last_report > 0.1:
                self._last_report = now
                self._draw()
        elif self.total:
            fraction = self.done / self.total
            if fraction >= self._next_fraction and fraction < 1:
                info(f"  {self.label}: {int(fraction * 100)}% of {self.total / 1e6:.1f} MB")
                while self._next_fraction <= fraction:
                    self._next_fraction += 0.25

    def _draw(self) -> None:
        if self.total:
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"\r  {self.label} [{bar}] {self.done / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        else:
            text = f"\r  {self.label} {self.done / 1e6:.1f} MB"
        sys.stderr.write(text)
        sys.stderr.flush()

    def close(self) -> None:
        if self.interactive:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()
