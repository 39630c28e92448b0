"""web/_wasmbuild_web.py, the Python half of the JavaScript API, run by the host Python: REPL-like evaluation (the
repr of the last expression), exceptions and SyntaxErrors as the REPL prints them, complete(), the file protocol
the JavaScript side uses."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def web(monkeypatch):
    """A fresh copy of the module, with a fresh __main__ namespace to run code in."""
    import types

    spec = importlib.util.spec_from_file_location("_wasmbuild_web", ROOT / "web" / "_wasmbuild_web.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        monkeypatch.delattr(sys, name, raising=False)
    return module


def test_the_last_expression_gives_its_repr(web):
    assert web.run("1 + 1") == {"ok": True, "repr": "2"}
    assert web.run("'a' * 3") == {"ok": True, "repr": "'aaa'"}
    assert web.run("x = [1, 2]\nx + [3]") == {"ok": True, "repr": "[1, 2, 3]"}


def test_statements_and_none_give_no_value(web, capsys):
    assert web.run("x = 5") == {"ok": True, "repr": None}
    assert web.run("print(6 * 7)") == {"ok": True, "repr": None}
    assert web.run("None") == {"ok": True, "repr": None}
    assert web.run("") == {"ok": True, "repr": None}
    assert web.run("def f():\n    return 1\n") == {"ok": True, "repr": None}
    assert capsys.readouterr().out == "42\n"  # stdout is not captured: it goes where the interpreter's goes


def test_state_persists_in_main_and_underscore_is_the_last_value(web):
    import __main__

    web.run("import math\nr = 2")
    assert web.run("math.pi * r ** 2")["repr"].startswith("12.566")
    assert __main__.__dict__["r"] == 2
    web.run("40 + 2")
    assert web.run("_")["repr"] == "42"


def test_an_exception_gives_its_traceback_without_the_modules_own_frames(web):
    web.run("def f():\n    return 1 / 0\n")
    result = web.run("f()")
    assert result["ok"] is False
    assert result["type"] == "ZeroDivisionError" and result["message"] == "division by zero"
    lines = result["traceback"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert 'File "<python-input-1>", line 1, in <module>' in lines[1]
    assert "f()" in lines[2]  # the input's own lines, from linecache
    assert any('File "<python-input-0>", line 2, in f' in line for line in lines)
    assert "return 1 / 0" in result["traceback"]
    assert lines[-1] == "ZeroDivisionError: division by zero"
    assert "_wasmbuild_web" not in result["traceback"]
    assert sys.last_value.__class__ is ZeroDivisionError  # type: ignore[attr-defined]


def test_an_error_in_the_last_expression_and_in_its_repr(web):
    result = web.run("x = 1\nundefined_name")
    assert result["type"] == "NameError" and "undefined_name" in result["message"]
    result = web.run("class A:\n    def __repr__(self):\n        raise ValueError('no repr')\nA()")
    assert result["type"] == "ValueError" and result["traceback"].endswith("ValueError: no repr")


def test_a_syntax_error_gives_the_repls_text(web):
    result = web.run("1 +")
    assert result == {"ok": False, "type": "SyntaxError", "message": "invalid syntax", "traceback": result["traceback"]}
    lines = result["traceback"].splitlines()
    assert lines[:2] == ['  File "<python-input-0>", line 1', "    1 +"]
    assert lines[2].strip() == "^" and lines[3:] == ["SyntaxError: invalid syntax"]
    assert "Traceback" not in result["traceback"]  # as the REPL: nothing ran, there is no traceback


def test_a_syntax_error_at_run_time_has_a_traceback(web):
    result = web.run("compile('1 +', 'x.py', 'exec')")
    assert result["type"] == "SyntaxError" and result["traceback"].startswith("Traceback (most recent call last):")


def test_nul_characters_and_system_exit_are_results(web):
    result = web.run("a\0b")
    assert result["ok"] is False and result["type"] in {"SyntaxError", "ValueError"}  # ValueError before 3.11.4
    result = web.run("raise SystemExit(3)")
    assert result["ok"] is False and result["type"] == "SystemExit" and result["message"] == "3"


@pytest.mark.parametrize(("source", "expected"), [
    ("1 + 1", True),
    ("", True),
    ("if x:", False),
    ("for i in range(3):\n    print(i)", False),   # a block ends with a blank line, as in the REPL
    ("for i in range(3):\n    print(i)\n", True),
    ("(1,", False),
    ("[1,\n 2", False),
    ('"""abc', False),
    ("def f():\n    return 1\n\n", True),
    ("x = 1\ny = 2", True),                        # pasted statements: run() runs them all
    ("1 +", True),                                 # wrong: running it reports the SyntaxError
    ("a\0b", True),
])
def test_complete(web, source, expected):
    assert web.complete(source) is expected


def test_the_file_protocol(web, tmp_path):
    source, out = tmp_path / "in.py", tmp_path / "out.json"
    source.write_text("s = 'é€😀'\ns", encoding="utf-8")
    web.run_file(str(source), str(out))
    assert json.loads(out.read_text()) == {"ok": True, "repr": "'é€😀'"}
    assert out.read_bytes().isascii()
    source.write_text("class S:\n    def __repr__(self):\n        return '\\ud800'\nS()")
    web.run_file(str(source), str(out))  # a lone surrogate is still written (as an escape)
    assert json.loads(out.read_text()) == {"ok": True, "repr": "\ud800"}
    source.write_text("if True:")
    web.complete_file(str(source), str(out))
    assert json.loads(out.read_text()) is False
    source.write_text("1 / 0")
    web.run_file(str(source), str(out))
    assert json.loads(out.read_text())["type"] == "ZeroDivisionError"
