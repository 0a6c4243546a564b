"""Fixtures for calling the local engine directly, the way the worker does: `await send(...)`.

* `local`  a LocalEngine on one event loop for the whole module (models load once), with
           `send(endpoint, body) -> (status, body dict)`; closed at the end of the module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from batchgate.engine.local import LocalEngine

T = TypeVar("T")


class Local:
    def __init__(self, runner: asyncio.Runner, engine: LocalEngine) -> None:
        self.runner = runner
        self.engine = engine

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def send(self, endpoint: str, body: dict[str, Any], timeout: float = 120.0) -> tuple[int, dict[str, Any]]:
        response = self.run(self.engine.send(endpoint, body, timeout))
        return response.status, json.loads(response.body)


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    with asyncio.Runner() as runner:
        engine = LocalEngine(chat_slots=4, embed_batch_size=32)
        runner.run(engine.start())
        yield Local(runner, engine)
        runner.run(engine.close())
