"""The configuration reference is generated from the settings and matches them (datasette's docs test, in spirit)."""

import re
from pathlib import Path

import click
import pytest

from batchgate import settings_doc
from batchgate.cli import main
from batchgate.settings import Settings
from batchgate.upstream.router import ADAPTIVE_CAP, INITIAL_WINDOW

CONFIGURATION = Path(__file__).parent.parent / "docs" / "configuration.md"
DOC = CONFIGURATION.read_text()


def test_settings_table_is_what_the_generator_writes() -> None:
    """Edit a description in settings.py (or a flag in the CLI), then run `python -m batchgate.settings_doc`."""
    assert DOC == settings_doc.render(DOC), "docs/configuration.md: run python -m batchgate.settings_doc"


def test_check_mode_fails_on_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(DOC.replace("Address the HTTP server binds to.", "Where it listens."))
    assert settings_doc.main([str(stale), "--check"]) == 1
    assert settings_doc.main([str(stale)]) == 0
    assert stale.read_text() == DOC
    assert settings_doc.main([str(stale), "--check"]) == 0


def test_flags_come_from_the_commands_that_build_settings() -> None:
    flags = settings_doc.setting_flags(main)
    assert flags["upstream_concurrency"] == [("--max-concurrency", ["serve", "worker", "run"])]
    assert flags["worker"] == [("--worker/--no-worker", ["serve"])]
    assert "poll_interval" not in flags  # `batches submit --poll-interval` is the client's, not the setting


def test_the_adaptive_window_is_described_as_the_router_sets_it() -> None:
    window = f"{INITIAL_WINDOW} up to {ADAPTIVE_CAP}"
    assert window in (Settings.model_fields["upstream_concurrency"].description or "")
    serve = main.commands["serve"]
    option = next(p for p in serve.params if isinstance(p, click.Option) and p.name == "upstream_concurrency")
    assert window in (option.help or "")


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
