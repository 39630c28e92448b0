"""Running commands: every subprocess wasmbuild starts goes through this module.

- `run`: a build command, echoed, its output sent to a step log whose tail is shown on failure (BuildError).
- `capture`: a short command whose output the caller reads (versions, probes, sanity checks), logged to stderr
  when WASMBUILD_VERBOSE is set (echoing them always would put `node --version` into every `wasmbuild run`).
- `call`: a command with the caller's streams (guests under node, a nested wasmbuild), logged like `capture`.
- `stream`: a long-running command whose merged output the caller reads line by line (regrtest).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from wasmbuild import log
from wasmbuild.errors import BuildError, MissingToolError

TAIL_LINES = 25


def capture(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | str | None = None,
            env: Mapping[str, str] | None = None, input: str | bytes | None = None, timeout: float | None = None,
            text: bool = True, check: bool = False) -> subprocess.CompletedProcess[Any]:
    """Run `argv` with its stdout and stderr captured (stdin: `input`, else nothing). `env` is the whole
    environment (None: this process's). OSError, TimeoutExpired and (with `check`) CalledProcessError propagate."""
    args = [str(os.fspath(a)) for a in argv]
    log.debug_command(args, Path(cwd) if cwd else None)
    return subprocess.run(args, cwd=cwd, env=None if env is None else dict(env), input=input, timeout=timeout,
                          capture_output=True, text=text, check=check,
                          stdin=subprocess.DEVNULL if input is None else None)


def call(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | str | None = None,
         env: Mapping[str, str] | None = None, stdout: IO[Any] | None = None, stderr: IO[Any] | None = None,
         timeout: float | None = None, preexec_fn: Callable[[], None] | None = None) -> int:
    """Run `argv` with stdin closed and the given (or inherited) stdout/stderr; its exit status (negative: the
    signal that ended it). TimeoutExpired propagates (the child is killed first)."""
    args = [str(os.fspath(a)) for a in argv]
    log.debug_command(args, Path(cwd) if cwd else None)
    proc = subprocess.run(args, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                          stdout=stdout, stderr=stderr, timeout=timeout, preexec_fn=preexec_fn)
    return proc.returncode


@contextlib.contextmanager
def stream(argv: Sequence[str | os.PathLike[str]], *, cwd: Path | str | None = None,
           env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """Start `argv` (echoed) with stdout and stderr merged into one text pipe; the caller reads `proc.stdout`
    and waits. Leaving the block by an exception terminates the command."""
    args = [str(os.fspath(a)) for a in argv]
    log.echo_command(args, Path(cwd) if cwd else None)
    proc = subprocess.Popen(args, cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        yield proc
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    finally:
        if proc.stdout:
            proc.stdout.close()


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
    args = [str(os.fspath(a)) for a in argv]
    log.echo_command(args, cwd)
    full_env = None if env is None else {**os.environ, **env}
    try:
        if log_file is None:
            proc = subprocess.run(args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL)
        else:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(log_file, "ab") as out:
                out.write(f"\n$ {' '.join(args)}\n".encode())
                out.flush()
                proc = subprocess.run(
                    args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
    except FileNotFoundError as exc:
        raise MissingToolError(f"cannot run {args[0]!r}: {exc.strerror}") from None
    if proc.returncode != 0:
        tail = ""
        if log_file is not None:
            lines = log_file.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            tail = "\n".join("    " + line for line in lines)
            log.info(f"  last {len(lines)} lines of {log_file}:\n{tail}")
        raise BuildError(
            f"{what or args[0]} failed with exit code {proc.returncode}"
            + (f"; full log: {log_file}" if log_file else ""),
        )
