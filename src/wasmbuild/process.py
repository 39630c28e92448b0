"""Running commands: echo them, send long output to a log file, name that file on failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from wasmbuild import log
from wasmbuild.errors import BuildError, MissingToolError

TAIL_LINES = 25


def require_tool(name: str, why: str, install_hint: str) -> str:
    path = shutil.which(name)
    if not path:
        raise MissingToolError(f"'{name}' not found on PATH ({why})", hint=install_hint)
    return path


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    what: str | None = None,
) -> None:
    """Run a command. With `log_file`, its output goes there (appended); on failure the tail is shown."""
    argv = [os.fspath(a) for a in argv]
    log.echo_command(argv, cwd)
    full_env = None if env is None else {**os.environ, **env}
    try:
        if log_file is None:
            proc = subprocess.run(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL)
        else:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "ab") as out:
                out.write(f"\n$ {' '.join(argv)}\n".encode())
                out.flush()
                proc = subprocess.run(
                    argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
    except FileNotFoundError as exc:
        raise MissingToolError(f"cannot run {argv[0]!r}: {exc.strerror}") from None
    if proc.returncode != 0:
        tail = ""
        if log_file is not None:
            lines = log_file.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            tail = "\n".join("    " + line for line in lines)
            log.info(f"  last {len(lines)} lines of {log_file}:\n{tail}")
        raise BuildError(
            f"{what or argv[0]} failed with exit code {proc.returncode}"
            + (f"; full log: {log_file}" if log_file else ""),
        )
