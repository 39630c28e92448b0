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

    def fail(message: str) -> RecipeError:
        where = f"{path}: " if path else ""
        return RecipeError(f"{file}: {where}{message}")

    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise fail(f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if key not in schema:
                close = difflib.get_close_matches(str(key), list(schema), n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                known = ", ".join(sorted(schema))
                raise fail(f"unknown key '{key}'{suggestion}; known keys: {known}")
        for key, field in schema.items():
            field = field if isinstance(field, Field) else Field(field)
            sub = f"{path}.{key}" if path else key
            if key not in value:
                if field.required:
                    raise RecipeError(f"{file}: {path + ': ' if path else ''}missing required key '{key}'")
                continue
            validate(value[key], field.schema, file, sub)
        return value
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            raise fail(f"expected a list, got {_type_name(value)}")
        for i, item in enumerate(value):
            validate(item, schema.item, file, f"{path}[{i}]")
        return value
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            raise fail(f"expected a mapping, got {_type_name(value)}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(f"key {key!r} must be a string")
            validate(item, schema.value, file, f"{path}.{key}" if path else key)
        return value
    if schema is Sha256:
        if not isinstance(value, str) or not SHA256_RE.match(value):
            raise fail(f"expected a sha256 (64 lowercase hex digits), got {value!r}")
        return value
    if schema is Url:
        if not isinstance(value, str) or not re.match(r"^(https?|file)://\S+$", value):
            raise fail(f"expected an http(s) url, got {value!r}")
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


def load_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{file}: file not found") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{file}: not valid YAML: {exc}") from None


# A downloadable input: the url is a hint, the sha256 (+ size) is the identity.
DOWNLOAD = {
    "url": Url,
    "sha256": Sha256,
    "size": Field(int, required=False),
    "filename": Field(str, required=False),
    # Path of the same bytes inside a Debian archive (pool/...), tried when upstream fails.
    "debian": Field(str, required=False),
}
