"""A tiny strict validator for YAML data: unknown keys (with "did you mean"), missing keys, wrong types.

Every error names the file and the YAML path, e.g. `recipes/cpython-3.13.yaml: source.sha256: ...`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wasmbuild.errors import RecipeError

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Field:
    schema: Any
    required: bool = True


class Sha256:
    """A lowercase hex sha256."""


class Url:
    """An http(s) or file url."""


class PositiveInt:
    """An integer > 0."""


class FileName:
    """A plain file name, used as one path component: not empty, no '/', not '.' or '..', no leading '-'."""


class RelPath:
    """A relative path of '/'-separated names: no leading '/', no empty, '.' or '..' components."""


def _bad_chars(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def file_name_problem(value: Any) -> str | None:
    """Why `value` is not a plain file name (None when it is one)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty file name"
    if "/" in value or "\\" in value:
        return "must be a plain file name, without '/'"
    if value in {".", ".."}:
        return f"must be a plain file name, not {value!r}"
    if value.startswith("-"):
        return "must not start with '-' (it would read as a command-line option)"
    if _bad_chars(value):
        return "must not contain control characters"
    return None


def rel_path_problem(value: Any) -> str | None:
    """Why `value` is not a relative path that stays inside its directory (None when it is one)."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty relative path"
    if value.startswith("/"):
        return "must be a relative path, not an absolute one"
    if "\\" in value or _bad_chars(value):
        return "must not contain backslashes or control characters"
    parts = value.split("/")
    if ".." in parts:
        return "must not contain '..' (it must stay inside its directory)"
    if any(part in {"", "."} for part in parts):
        return "must not contain empty or '.' components"
    if parts[0].startswith("-"):
        return "must not start with '-' (it would read as a command-line option)"
    return None


class _Checks:
    """The key, in a mapping schema, of a tuple of checks on the whole mapping (run after its keys validate).

    A key rather than a wrapper so the checks survive `{**SCHEMA, "extra": ...}`. A check takes the mapping and
    returns None or (key, message): the key ('' for the mapping itself) extends the YAML path of the error."""

    def __repr__(self) -> str:
        return "CHECKS"


CHECKS = _Checks()
# Deeper than any recipe or manifest needs; guards the recursive composer and validator.
MAX_DEPTH = 64


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping with free string keys and values of one schema."""

    value: Any


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "integer", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def validate(value: Any, schema: Any, file: Path | str, path: str = "") -> Any:
    """Check `value` against `schema`; return it unchanged. Raise RecipeError naming file and path."""
    try:
        return _validate(value, schema, file, path)
    except RecursionError:
        raise RecipeError(f"{file}: {path + ': ' if path else ''}nested too deeply") from None


def _validate(value: Any, schema: Any, file: Path | str, path: str = "") -> Any:
    def fail(message: str) -> RecipeError:
        where = f"{path}: " if path else ""
        return RecipeError(f"{file}: {where}{message}")

    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise fail(f"expected a mapping, got {_type_name(value)}")
        names = [k for k in schema if isinstance(k, str)]
        for key in value:
            if not isinstance(key, str) or key not in schema:
                close = difflib.get_close_matches(str(key), names, n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(sorted(names))
                raise fail(f"unknown key '{key}'{suggestion}; known keys: {known}")
        for key, field in schema.items():
            if not isinstance(key, str):
                continue
            field = field if isinstance(field, Field) else Field(field)
            sub = f"{path}.{key}" if path else key
            if key not in value:
                if field.required:
                    raise RecipeError(f"{file}: {path + ': ' if path else ''}missing required key '{key}'")
                continue
            _validate(value[key], field.schema, file, sub)
        for check in schema.get(CHECKS, ()):
            if problem := check(value):
                key, message = problem
                sub = f"{path}.{key}" if path and key else key or path
                raise RecipeError(f"{file}: {sub + ': ' if sub else ''}{message}")
        return value
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            raise fail(f"expected a list, got {_type_name(value)}")
        for i, item in enumerate(value):
            _validate(item, schema.item, file, f"{path}[{i}]")
        return value
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            raise fail(f"expected a mapping, got {_type_name(value)}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(f"key {key!r} must be a string")
            _validate(item, schema.value, file, f"{path}.{key}" if path else key)
        return value
    if schema is Sha256:
        if not isinstance(value, str) or not SHA256_RE.match(value):
            raise fail(f"expected a sha256 (64 lowercase hex digits), got {value!r}")
        return value
    if schema is Url:
        if not isinstance(value, str) or not re.match(r"^(https?|file)://\S+$", value):
            raise fail(f"expected an http(s) url, got {value!r}")
        return value
    if schema is FileName:
        if problem := file_name_problem(value):
            raise fail(f"{problem}, got {value!r}")
        return value
    if schema is RelPath:
        if problem := rel_path_problem(value):
            raise fail(f"{problem}, got {value!r}")
        return value
    if schema is PositiveInt:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise fail(f"expected a positive integer, got {value!r}")
        return value
    if schema is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"expected a non-negative integer, got {value!r}")
        return value
    if schema is str:
        if not isinstance(value, str) or not value:
            raise fail(f"expected a non-empty string, got {_type_name(value)} {value!r}")
        return value
    if schema is bool:
        if not isinstance(value, bool):
            raise fail(f"expected true or false, got {value!r}")
        return value
    raise TypeError(f"bad schema {schema!r}")  # pragma: no cover - programming error


class _LoadProblem(yaml.YAMLError):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else None


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys (YAML forbids them; PyYAML keeps the last one silently) and
    nesting deeper than MAX_DEPTH (PyYAML's composer recurses: 2,000 levels are a RecursionError)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LoadProblem(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    seen = key in first
                except TypeError:  # unhashable: the base class reports it
                    continue
                if seen:
                    raise _LoadProblem(f"duplicate key '{key}' (first given on line {first[key]})",
                                       key_node.start_mark)
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_document(file: Path, schema: Any, fmt: int) -> Any:
    """A data file loaded, checked against `schema`, and of format `fmt` (one convention for recipes, toolchain
    manifests, the libraries and the host tools)."""
    data = validate(load_yaml(file), schema, file)
    if data["format"] != fmt:
        raise RecipeError(f"{file}: format: unsupported format {data['format']} (this wasmbuild reads {fmt})")
    return data


def load_yaml(file: Path) -> Any:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"{file}: file not found") from None
    except OSError as exc:
        raise RecipeError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(f"{file}: not UTF-8 text (line {line}, byte {exc.start}: {raw[exc.start:exc.start + 1]!r})",
                          hint="save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except _LoadProblem as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise RecipeError(f"{file}: {where}{exc.message}") from None
    except RecursionError:
        raise RecipeError(f"{file}: nested too deeply") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{file}: not valid YAML: {exc}") from None


def download_name(data: dict[str, Any]) -> str:
    """The file name a download is stored under: `filename`, else the url's last segment (as Download.name)."""
    return data.get("filename") or str(data.get("url", "")).rstrip("/").rsplit("/", 1)[-1]


def _check_size(data: dict[str, Any]) -> tuple[str, str] | None:
    if "size" not in data and "max_size" not in data:
        return "", ("missing 'size' (the exact length in bytes) or, for an input whose upstream publishes no size, "
                    "'max_size' (an upper bound in bytes)")
    if "size" in data and "max_size" in data and data["size"] > data["max_size"]:
        return "max_size", f"{data['max_size']} is smaller than size {data['size']}"
    return None


def _check_url_name(data: dict[str, Any]) -> tuple[str, str] | None:
    if "filename" in data:
        return None
    name = download_name(data)
    if problem := file_name_problem(name):
        return "url", (f"the file name taken from the url's last segment ({name!r}) {problem}; "
                       "give a plain 'filename'")
    return None


# A downloadable input: the url is a hint, the sha256 (+ size) is the identity.
DOWNLOAD = {
    "url": Url,
    "sha256": Sha256,
    "size": Field(int, required=False),
    # An upper bound in bytes, for an input whose upstream publishes no size (every download has one of the two).
    "max_size": Field(PositiveInt, required=False),
    "filename": Field(FileName, required=False),
    # Path of the same bytes inside a Debian archive (pool/...), tried when upstream fails.
    "debian": Field(RelPath, required=False),
    CHECKS: (_check_size, _check_url_name),
}
