"""files.py: the one atomic write and the one JSON format."""

from __future__ import annotations

import json

import pytest

from wasmbuild import files


def test_write_json_is_atomic_and_keeps_the_data_order(tmp_path):
    path = tmp_path / "reports" / "out.json"
    files.write_json(path, {"b": 1, "a": [1, 2]})
    assert path.read_text() == '{\n  "b": 1,\n  "a": [\n    1,\n    2\n  ]\n}\n'
    files.write_json(path, {"c": 3})
    assert json.loads(path.read_text()) == {"c": 3}
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_json_text_is_the_build_records_format():
    # BUILD.json's bytes depend on it: two-space indent, no sorting, a final newline.
    assert files.json_text({"z": None, "a": {"k": "v"}}) == '{\n  "z": null,\n  "a": {\n    "k": "v"\n  }\n}\n'


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_open(path) as out:
        out.write(b"new, half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_atomic_write_sets_the_mode(tmp_path):
    path = tmp_path / "run.sh"
    files.atomic_write(path, "#!/bin/sh\n", mode=0o755)
    assert path.stat().st_mode & 0o777 == 0o755 and path.read_text() == "#!/bin/sh\n"
