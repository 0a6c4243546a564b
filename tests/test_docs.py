"""The configuration reference names every setting (datasette's docs test, in spirit)."""

import re
from pathlib import Path

import pytest

from batchgate.settings import Settings

DOC = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`BATCHGATE_{name.upper()}`" in DOC


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_has_help_text(name: str) -> None:
    assert Settings.model_fields[name].description


DOCS = [Path(__file__).parent.parent / "README.md", *sorted((Path(__file__).parent.parent / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_docs_stand_alone(page: Path) -> None:
    """A clone has no `../shared`: the docs name nothing outside the repository, and their relative links resolve."""
    text = page.read_text()
    assert "../shared" not in text and "MEASURED.md" not in text and "CONTRACT.md" not in text
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (page.parent / target).resolve()
        assert resolved.exists(), f"{page.name} links to {target}, which is not in the repository"
        assert resolved.is_relative_to(Path(__file__).parent.parent.resolve())
