"""The local engine's lanes, on the real models: through the routes `batchgate serve` builds by default, driven the
way the worker drives them, chat requests reach the engine only up to its slots and a margin (the rest wait at the
chat route's gate) while embedding requests run beside them in their own lane."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from batchgate.domain.retry import RetryPolicy
from batchgate.engine import registry
from batchgate.engine.lanes import CHAT, EMBED_BATCHES, EMBEDDINGS, SLOT_MARGIN, lane_of
from batchgate.engine.local import LocalEngine
from batchgate.settings import Settings
from batchgate.upstream.executor import UpstreamResponse
from batchgate.wiring.routes import build_router
from batchgate.worker.execute import RequestExecutor

from ..engine.support import needs

pytestmark = [pytest.mark.local_models, needs(registry.SMOLLM), needs(registry.MINILM)]

SLOTS, BATCH = 4, 32  # the engine's defaults


class AtTheEngine:
    """Requests inside the engine's `send`, by lane: now, at most, and how often chat and embeddings were in it at
    once (counted as each request enters)."""

    def __init__(self, engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.together = 0
        send = engine.send

        async def counted(endpoint: str, body: dict[str, Any], timeout: float, sending: Any = None) -> UpstreamResponse:
            lane = lane_of(body["model"])
            self.now[lane] += 1
            self.peak[lane] = max(self.peak[lane], self.now[lane])
            self.together += bool(self.now[CHAT] and self.now[EMBEDDINGS])
            try:
                return await send(endpoint, body, timeout, sending)
            finally:
                self.now[lane] -= 1

        monkeypatch.setattr(engine, "send", counted)


def test_chat_waits_at_its_gate_beyond_the_slots_while_embeddings_run(monkeypatch: pytest.MonkeyPatch) -> None:
    router = build_router(Settings(), {})
    chat, embed = router.resolve(registry.SMOLLM.id), router.resolve(registry.MINILM.id)
    assert chat is not None and embed is not None and chat is not embed
    engine = chat.executor
    assert isinstance(engine, LocalEngine) and embed.executor is engine
    seen = AtTheEngine(engine, monkeypatch)
    chats = 2 * (SLOTS + SLOT_MARGIN)
    embeds = EMBED_BATCHES * BATCH + 16

    async def run() -> list[Any]:
        await router.start()
        ex = RequestExecutor(RetryPolicy(max_attempts=1), timeout=600)
        try:
            return await asyncio.gather(
                *(ex.run(chat, "/v1/chat/completions", i, f"c{i}",
                         {"model": registry.SMOLLM.id, "max_tokens": 1, "temperature": 0, "seed": i,
                          "messages": [{"role": "user", "content": f"Say {i}."}]}) for i in range(chats)),
                *(ex.run(embed, "/v1/embeddings", i, f"e{i}", {"model": registry.MINILM.id, "input": f"word {i}"})
                  for i in range(embeds)))
        finally:
            await router.close()

    results = asyncio.run(run())
    assert all(r.ok for r in results), [r.data for r in results if not r.ok][:2]
    assert seen.peak[CHAT] == SLOTS + SLOT_MARGIN  # never more: the other chat requests waited at the gate
    assert seen.peak[EMBEDDINGS] == EMBED_BATCHES * BATCH  # its own window, not the chat lane's
    assert seen.together > 0  # both lanes at the engine at once
    assert chat.pool.inflight == embed.pool.inflight == 0
