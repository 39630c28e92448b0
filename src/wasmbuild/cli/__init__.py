"""Command line: `python -m wasmbuild build|run|smoke-test|toolchain|download|versions`.

One thin module per command family (build, run, linking, release, browser): each adds its subcommands' options, and each
command parses, calls one library function, prints. Every WasmbuildError is caught here, once: `error: <message>`
and its exit code. Environment variables that are set but empty count as unset (as XDG_CACHE_HOME does). Heavy
modules are imported by the commands that use them (start-up time: `wasmbuild run` imports only the run path)."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys

from wasmbuild import cache, log
from wasmbuild.cli import browser, build, linking, packages, release, run
from wasmbuild.cli.options import _sources, parse_size
from wasmbuild.errors import UsageError, WasmbuildError, describe

__all__ = ["cache", "main", "parse_size", "_parser", "_sources"]
FAMILIES = (build, run, linking, packages, release, browser)
COMMANDS = {name: command for family in FAMILIES for name, command in family.COMMANDS.items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmbuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.add_parsers(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:  # noqa: ARG001
    raise KeyboardInterrupt  # so `kill` cleans up like Ctrl-C: partial cache entries are removed


RUN_HINT = "put Python's arguments after --, e.g. wasmbuild run ART -- -c 'print(1)'"


def _parse(argv: list[str]) -> argparse.Namespace:
    """argparse, except that `run` takes its guest's arguments after the first `--` (wasmbuild's own options may
    come before or after the artifact). argparse errors exit (SystemExit 2) with its usage message."""
    parser = _parser()
    if argv[:1] != ["run"]:
        return parser.parse_args(argv)
    head, guest = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    args, extra = parser.parse_known_args(head)
    if extra:
        if guest is None:
            raise UsageError(f"run: unexpected argument{'s' if len(extra) > 1 else ''} {shlex.join(extra)}",
                             hint=RUN_HINT)
        raise UsageError(f"run: unknown option{'s' if len(extra) > 1 else ''} before --: {shlex.join(extra)}",
                         hint="see wasmbuild run --help; Python's own arguments go after --")
    args.args = guest or []
    return args


# Commands that build: each first checks, at once, the host tools wasmbuild cannot provision (hosttools.preflight).
BUILDING = frozenset({"build", "toolchain", "test", "matrix"})


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            args = _parse(argv)
        except SystemExit as exc:  # --help, or argparse's usage error (already printed)
            return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        signal.signal(signal.SIGTERM, _terminate)
        if args.command in BUILDING:
            from wasmbuild.toolchain.hosttools import preflight

            targets = getattr(args, "target", None)
            for target in (targets if isinstance(targets, list) else [targets]) if targets else [None, "emscripten"]:
                preflight(target)
        return COMMANDS[args.command](args)
    except WasmbuildError as exc:
        log.info(f"error: {exc}")  # never empty: WasmbuildError names its cause when its message does not
        return exc.exit_code
    except OSError as exc:  # one a command did not turn into a WasmbuildError: still one line naming the file
        log.info(f"error: {describe(exc)}")
        return 1
    except KeyboardInterrupt:
        log.info("interrupted: partial cache entries were removed; run the same command again to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
