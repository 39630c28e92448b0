"""The Python half of wasmbuild's JavaScript API (web/wasmbuild-python.mjs), installed into the web artifact's
standard library as `_wasmbuild_web`.

`run(code)` runs code as a REPL (or Pyodide's eval_code) does: every statement is executed in `__main__`'s
namespace, and when the last one is an expression its value is returned as its `repr` (None is no value).
Nothing is captured: stdout and stderr go where the interpreter's go (the page's console). The result is a dict:
`{"ok": True, "repr": "2"}` (`"repr": None` when there is no value), or
`{"ok": False, "type": "ZeroDivisionError", "message": "division by zero", "traceback": "Traceback ..."}`; a
SyntaxError has its formatted text (file, line, caret) as its traceback, as the REPL shows it.

`complete(source)` says whether a REPL's input is complete: False while more lines are needed (`if x:` ...),
True when it can run, syntax errors included (running it reports them).

The JavaScript side talks to it through two files in the in-memory file system (`run_file`, `complete_file`):
it writes the code with FS.writeFile, calls PyRun_SimpleString and reads the JSON answer back.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import json
import linecache
import sys
import traceback
from typing import Any

__all__ = ["complete", "complete_file", "run", "run_file"]

# Each input gets its own file name, as the 3.13 REPL names them, so a traceback through a function defined by an
# earlier input shows that input's lines (they are kept in linecache).
_FILENAME = "<python-input-{}>"
_counter = 0


def _next_filename(code: str) -> str:
    global _counter
    name = _FILENAME.format(_counter)
    _counter += 1
    linecache.cache[name] = (len(code), None, code.splitlines(keepends=True), name)
    return name


# Frames of this module are left out of tracebacks: its code objects' file name (from a .pyc or the source alike).
_THIS_FILE = _next_filename.__code__.co_filename


def _namespace() -> dict[str, Any]:
    import __main__

    return __main__.__dict__


def _error(exc: BaseException, *, compiling: bool = False) -> dict[str, Any]:
    """The exception as the REPL prints it: without this module's own frames, and for code that does not compile
    only the error itself (a SyntaxError's file, line and caret)."""
    if compiling:
        lines = traceback.format_exception_only(type(exc), exc)
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _THIS_FILE:
            tb = tb.tb_next
        lines = traceback.format_exception(type(exc), exc, tb)
        message = str(exc)
    return {"ok": False, "type": type(exc).__name__, "message": message, "traceback": "".join(lines).rstrip("\n")}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed or replaced stream: the result is still returned
            pass


def run(code: str) -> dict[str, Any]:
    """Execute `code` in __main__; the repr of its last expression, or the exception as the REPL shows it."""
    namespace = _namespace()
    filename = _next_filename(code)
    try:
        try:
            tree = ast.parse(code, filename, "exec")
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            return _error(exc, compiling=True)  # ValueError: a NUL character in the source (3.11.2)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            exec(compile(tree, filename, "exec"), namespace)
            if last is None:
                return {"ok": True, "repr": None}
            value = eval(compile(last, filename, "eval"), namespace)
            if value is None:
                return {"ok": True, "repr": None}
            builtins._ = value  # as the REPL's sys.displayhook does
            return {"ok": True, "repr": repr(value)}
        except BaseException as exc:  # noqa: B036 -- SystemExit and KeyboardInterrupt are results here too
            # For pdb.pm() and friends, as the REPL leaves them (sys.last_exc is 3.12's name).
            sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, exc.__traceback__
            sys.last_exc = exc
            return _error(exc)
    finally:
        _flush()


def complete(source: str) -> bool:
    """False while the REPL needs more lines (an open block, bracket or string), True when `source` can run."""
    try:
        return codeop.compile_command(source, _FILENAME.format("?"), "single") is not None
    except (SyntaxError, ValueError, OverflowError):
        return True  # complete, and wrong: running it reports the error


def _write_json(path: str, value: Any) -> None:
    # ASCII JSON: a repr or message with lone surrogates is still written (as \udXXX escapes, which JSON.parse reads).
    with open(path, "w", encoding="ascii") as f:
        json.dump(value, f)


def run_file(source_path: str, result_path: str) -> None:
    """run() the UTF-8 code in `source_path`; its result as JSON in `result_path` (the JavaScript side's call)."""
    with open(source_path, encoding="utf-8") as f:
        code = f.read()
    _write_json(result_path, run(code))


def complete_file(source_path: str, result_path: str) -> None:
    """complete() of the code in `source_path`, as JSON `true`/`false` in `result_path`."""
    with open(source_path, encoding="utf-8") as f:
        source = f.read()
    _write_json(result_path, complete(source))
