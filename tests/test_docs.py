"""The configuration reference names every setting (datasette's docs test, in spirit)."""

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
