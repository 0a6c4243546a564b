"""Fixtures for the dashboard: a batchgate with keys for two projects, and headless Chromium (Debian's
`chromium` package) driven by Playwright. Browser tests skip only when chromium is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, create_key

from .support import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, UPSTREAM_CONCURRENCY, KeyedServer


@pytest.fixture(scope="module")
def keyed(module_server_factory: Any) -> KeyedServer:
    server: BatchgateServer = module_server_factory(
        env={"BATCHGATE_UPSTREAM_CONCURRENCY": str(UPSTREAM_CONCURRENCY)}, start=False
    )
    alpha, beta = create_key(server.data_dir, "alpha"), create_key(server.data_dir, "beta")
    server.start()
    return KeyedServer(server, alpha, beta)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, accept_downloads=True, viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(15_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A fresh tab with no cookies: every test logs in as whom it needs."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    yield tab
    tab.close()

