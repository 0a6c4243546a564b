"""Fixtures: a fake upstream and `batchgate serve` as real subprocesses, and SDK clients for them; and the tiers.

Each test is marked `unit`, `integration` or `system` by the folder it lives in (see docs/testing.md), so
`pytest -m "not system"` is the quick loop. The checks of the repository itself (tests/test_*.py) are unit.

* `fake_upstream`           the session's fake upstream, knobs and counters reset around each test.
* `fake_upstream_factory`   `make()` starts a private fake (for tests that read its counters).
* `server`                  the session's default batchgate, `--upstream` = the session fake.
* `client`                  an `openai.OpenAI` client for `server` (max_retries=0).
* `server_factory`          `make(upstream=..., args=[...], env={...}, start=True)` → BatchgateServer,
                            stopped at the end of the test; `module_server_factory` lives per module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, FakeUpstream
from helpers import ANY
from openai import OpenAI

# The session server: four attempts per request so retry tests know the exact count.
SESSION_SERVER_ENV = {"BATCHGATE_MAX_ATTEMPTS": "4", "BATCHGATE_REQUEST_TIMEOUT": "20"}

Factory = Callable[..., BatchgateServer]


class _Servers:
    def __init__(self, root: Path, default_upstream: Callable[[], str]) -> None:
        self.root = root
        self.default_upstream = default_upstream
        self.started: list[BatchgateServer] = []

    def make(
        self,
        *,
        upstream: Any = ANY,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        data_dir: Path | None = None,
        start: bool = True,
    ) -> BatchgateServer:
        upstream_url = self.default_upstream() if upstream is ANY else upstream
        data_dir = data_dir or self.root / f"data{len(self.started)}"
        server = BatchgateServer(data_dir, upstream=upstream_url, args=args, env=env, host=host)
        self.started.append(server)
        if start:
            server.start()
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.stop(grace=5.0)  # SIGTERM, then SIGKILL


class _Fakes:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[FakeUpstream] = []

    def make(self) -> FakeUpstream:
        fake = FakeUpstream(self.root / f"fake{len(self.started)}.log")
        self.started.append(fake)
        return fake

    def stop_all(self) -> None:
        for fake in self.started:
            fake.stop()


@pytest.fixture(scope="session")
def session_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstream]:
    fakes = _Fakes(tmp_path_factory.mktemp("session-fake"))
    yield fakes.make()
    fakes.stop_all()


@pytest.fixture
def fake_upstream(session_fake: FakeUpstream) -> Iterator[FakeUpstream]:
    session_fake.reset()
    yield session_fake
    session_fake.reset()


@pytest.fixture
def fake_upstream_factory(tmp_path: Path) -> Iterator[Callable[[], FakeUpstream]]:
    fakes = _Fakes(tmp_path)
    yield fakes.make
    fakes.stop_all()


@pytest.fixture(scope="module")
def module_fake_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], FakeUpstream]]:
    fakes = _Fakes(tmp_path_factory.mktemp("module-fakes"))
    yield fakes.make
    fakes.stop_all()


@pytest.fixture(scope="session")
def server(session_fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BatchgateServer]:
    servers = _Servers(tmp_path_factory.mktemp("session-server"), lambda: session_fake.base_url)
    yield servers.make(env=SESSION_SERVER_ENV)
    servers.stop_all()


@pytest.fixture
def client(server: BatchgateServer) -> Iterator[OpenAI]:
    sdk = OpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=60.0)
    yield sdk
    sdk.close()


@pytest.fixture
def server_factory(session_fake: FakeUpstream, tmp_path: Path) -> Iterator[Factory]:
    servers = _Servers(tmp_path, lambda: session_fake.base_url)
    yield servers.make
    servers.stop_all()


@pytest.fixture(scope="module")
def module_server_factory(session_fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    servers = _Servers(tmp_path_factory.mktemp("module-servers"), lambda: session_fake.base_url)
    yield servers.make
    servers.stop_all()


TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if len(parts) == 1:
            tier = "unit"
        elif parts[0] in TIERS:
            tier = parts[0]
        else:
            # A folder outside the tiers would run in every tier or none; say where it belongs instead.
            raise pytest.UsageError(
                f"tests/{'/'.join(parts)}: tests live under tests/unit, tests/integration or tests/system "
                "(docs/testing.md says which)"
            )
        item.add_marker(tier)


def pytest_report_header(config: Any) -> str:
    return "batchgate tests: servers run as subprocesses against tests/support/fake_upstream.py"
