"""The repository's own shape: nothing outside it is referred to, module names are unique, links resolve."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEXT_DIRS = ("src", "tests", "recipes", "toolchains", "patches", "docs", ".ci", "tools")
TEXT_FILES = ("README.md", "noxfile.py", "pyproject.toml")


def text_files() -> list[Path]:
    files = [ROOT / f for f in TEXT_FILES]
    for d in TEXT_DIRS:
        files += [p for p in (ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return files


def test_nothing_points_outside_the_repository():
    outside = "../" + "shared"  # spelled so that this file does not match itself
    hits = [str(p.relative_to(ROOT)) for p in text_files() if outside in p.read_text(errors="replace")]
    assert hits == []


def test_no_two_modules_share_a_file_name():
    names = Counter(p.name for p in (ROOT / "src" / "wasmbuild").rglob("*.py") if p.name != "__init__.py")
    assert [n for n, c in names.items() if c > 1] == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_into_the_platform_notes_name_existing_sections():
    notes = ROOT / "docs" / "platform-notes.md"
    anchors = {_slug(line.lstrip("#")) for line in notes.read_text().splitlines() if line.startswith("#")}
    links = [(p, m) for p in text_files() for m in re.findall(r"docs/platform-notes\.md#([\w-]+)",
                                                             p.read_text(errors="replace"))]
    assert links, "nothing links to the platform notes"
    assert [(str(p.relative_to(ROOT)), a) for p, a in links if a not in anchors] == []
