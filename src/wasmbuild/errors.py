"""One exception hierarchy; each error carries the exit code and a message that says what to do.

The CLI catches `WasmbuildError` in one place (cli.main) and prints `error: <message>`.
"""

from __future__ import annotations


class WasmbuildError(Exception):
    """Base class: a failure the user can act on."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        message = super().__str__().rstrip()
        if not message or message.endswith(":"):  # nothing (after the colon) names the cause: name it here
            message = f"{message} {self.cause()}" if message else self.cause()
        return f"{message}\n  hint: {self.hint}" if self.hint else message

    def cause(self) -> str:
        """The exception this one was raised from or while handling, or what its class stands for."""
        cause = self.__cause__ or self.__context__
        if cause is not None and cause is not self:
            return describe(cause)
        doc = (type(self).__doc__ or "").strip().splitlines()
        if type(self) is WasmbuildError or not doc:
            return f"{type(self).__name__} with no message (a bug in wasmbuild: please report the command)"
        return doc[0].rstrip(".")


def describe(exc: BaseException | None) -> str:
    """A non-empty text naming `exc`: its message (an OSError's strerror and file name), else its type's name."""
    if exc is None:
        return "no further detail"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename is not None else exc.strerror
    text = str(exc).strip()
    if isinstance(exc, WasmbuildError | OSError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (no message)"


class UsageError(WasmbuildError):
    """Bad command line: unknown version, target, option."""

    exit_code = 2


class RecipeError(WasmbuildError):
    """A recipe or toolchain manifest is malformed; the message names the file and the YAML path."""

    exit_code = 3


class DownloadError(WasmbuildError):
    """No route delivered the expected bytes."""

    exit_code = 4


class ChecksumError(DownloadError):
    """Bytes arrived but their sha256 or size is not the pinned one."""


class ToolchainError(WasmbuildError):
    """A toolchain could not be provisioned or is unusable."""

    exit_code = 5


class MissingToolError(WasmbuildError):
    """A host tool (cc, make, ...) is not installed."""

    exit_code = 5


class PatchError(WasmbuildError):
    """A patch no longer applies."""

    exit_code = 6


class BuildError(WasmbuildError):
    """A build command failed; the message names the log file."""

    exit_code = 7


class ArchiveError(WasmbuildError):
    """An archive is unsafe (members leaving the tree) or unreadable."""

    exit_code = 8


class SmokeTestError(WasmbuildError):
    """The built artifact does not behave."""

    exit_code = 9


class LockError(WasmbuildError):
    """Another wasmbuild run holds the cache lock."""

    exit_code = 10


class RunError(WasmbuildError):
    """A built artifact cannot be run (an invalid module, a runtime that cannot host it)."""

    exit_code = 11


class TestSuiteError(WasmbuildError):
    """CPython's test suite did not end as the expectations file says (or ran nothing)."""

    __test__ = False  # not a pytest test class
    exit_code = 12


class VerifyError(WasmbuildError):
    """An artifact does not match what is published with it (sums, index, SBOM), or its rebuild differs."""

    exit_code = 13


class PackageError(WasmbuildError):
    """`wasmbuild install`: no set of distributions serves the requirements on the artifact's target."""

    exit_code = 14
