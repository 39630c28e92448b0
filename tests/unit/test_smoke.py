"""smoke-test on an artifact whose record is missing or malformed: one error naming it, no traceback."""

from __future__ import annotations

import pytest

from wasmbuild.checks.smoke import smoke_test_any
from wasmbuild.errors import SmokeTestError


@pytest.mark.parametrize(("record", "message"), [
    (None, "no BUILD.json"),
    ("{not json", "BUILD.json is not valid JSON"),
    ("{}", "BUILD.json lacks python.version"),
    ('{"python": {"version": 3}, "target": {"name": "wasi", "triple": "x"}, '
     '"artifact": {"python.wasm": {"sha256": "0"}}}', "BUILD.json lacks python.version"),
    (b"\xff\xfe", "BUILD.json is not valid JSON"),
])
def test_a_missing_or_malformed_record_is_one_error(tmp_path, record, message):
    art = tmp_path / "cpython-x"
    (art / "lib").mkdir(parents=True)
    (art / "python.wasm").write_bytes(b"\0asm\x01\0\0\0")
    if isinstance(record, bytes):
        (art / "BUILD.json").write_bytes(record)
    elif record is not None:
        (art / "BUILD.json").write_text(record)
    with pytest.raises(SmokeTestError, match=message) as info:
        smoke_test_any(art, tmp_path / "cache")
    assert info.value.exit_code == 9
