"""What the dashboard's browser tests share: the Chromium to drive, the server with two projects' keys, and
where screenshots go."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import BatchgateServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
UPSTREAM_CONCURRENCY = 2  # few requests at once, so a batch's progress is visible for a few seconds


@dataclass
class KeyedServer:
    server: BatchgateServer
    alpha: str  # a key of project "alpha"
    beta: str  # a key of project "beta"

    @property
    def url(self) -> str:
        return self.server.url


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
