"""What a newcomer meets on the first run: setup without deprecation warnings, a data dir git ignores."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_license_is_an_spdx_string() -> None:
    """A `{text = ...}` table makes setuptools print a deprecation box on every `pip install -e .`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert isinstance(project["license"], str)


def test_default_data_dir_is_ignored_by_git() -> None:
    found = subprocess.run(["git", "check-ignore", "-q", "batchgate-data/batchgate.sqlite3"], cwd=ROOT)
    assert found.returncode == 0
