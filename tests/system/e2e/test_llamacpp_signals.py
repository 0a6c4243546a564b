"""Engine signals and priorities against a real engine: llama.cpp's own HTTP server (2 slots).

`engine_metrics = "auto"` finds it is llama.cpp from its `/metrics`, learns its slot count from `/slots`, and
follows its busy slots; a route with `batch_priority` is still answered (llama.cpp has no request priority and
ignores the field). Nothing is timed: the test waits for states.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from llamacpp import MODEL, LlamaCppServer, skip_unless_available

from batchgate.settings import Settings
from batchgate.upstream.engine_poll import EngineSignals
from batchgate.upstream.http import HttpUpstream
from batchgate.wiring.routes import build_router

pytestmark = pytest.mark.local_models

SLOTS = 2


@pytest.fixture
def llama(tmp_path: Path) -> Iterator[LlamaCppServer]:
    skip_unless_available()
    with LlamaCppServer(tmp_path / "llama.log", slots=SLOTS) as server:
        yield server


async def until(check: Callable[[], bool]) -> None:
    for _ in range(100_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the state never came")


def test_auto_reads_llamacpps_metrics_and_slots_and_priority_is_harmless(llama: LlamaCppServer,
                                                                        tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(f'[[upstreams]]\nname = "llama"\nurl = "{llama.base_url}"\nengine_metrics = "auto"\n'
                      'batch_priority = 10\n')
    [route] = build_router(Settings(config=config, data_dir=tmp_path), {}).routes
    replica = route.pool.replicas[0]
    body = {"model": MODEL, "max_tokens": 64, "temperature": 0,
            "messages": [{"role": "user", "content": "Count from one to fifty in words."}]}
    busy = [threading.Thread(target=llama.chat, args=(body,)) for _ in range(SLOTS + 1)]

    async def go() -> None:
        signals = EngineSignals(interval=0.05)
        await signals.start([route])
        try:
            await until(lambda: replica.engine_load is not None)
            [poller] = signals.pollers
            assert poller.kind == "llamacpp" and replica.engine_load is not None
            assert replica.engine_load.slots == SLOTS and replica.engine_load.kv_usage is None
            for t in busy:
                t.start()
            await until(lambda: replica.engine_load is not None and replica.engine_load.running == SLOTS)
            for t in busy:
                await asyncio.to_thread(t.join)
            await until(lambda: replica.engine_load is not None and replica.engine_load.running == 0)
            upstream = route.executor
            assert isinstance(upstream, HttpUpstream) and upstream.priority == 10
            await upstream.start()
            try:
                answer = await upstream.send("/v1/chat/completions", {**body, "max_tokens": 4}, 60)
            finally:
                await upstream.close()
            assert answer.status == 200
        finally:
            await signals.close()

    asyncio.run(go())
