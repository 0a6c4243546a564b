"""BatchService wakes the worker itself, through the hook it was given: after a batch is created or cancelled,
never after a refused cancel. (A bad body never reaches the service: CreateBatch refuses it.)
(The API and the dashboard used to reach for the worker to do this.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from batchgate.domain.batch import Batch
from batchgate.domain.status import BatchStatus
from batchgate.errors import Conflict, NotFound
from batchgate.protocol.requests import CreateBatch
from batchgate.services.auth import Principal
from batchgate.services.batches import BatchService
from batchgate.settings import Settings
from batchgate.store.factory import make_store

WHO = Principal("p")


def test_create_and_cancel_wake_the_worker_and_refusals_do_not(tmp_path: Path) -> None:
    woken: list[str] = []

    async def go() -> None:
        store = make_store(Settings(data_dir=tmp_path))
        await store.open()
        try:
            svc = BatchService(store, wake=lambda: woken.append("wake"))
            batch = await svc.create(WHO, CreateBatch.from_json({
                "input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"}))
            assert woken == ["wake"]
            await svc.cancel(WHO, batch.id)
            assert woken == ["wake", "wake"]

            done = Batch("batch_done", "p", "/v1/chat/completions", "file-x", "24h", BatchStatus.COMPLETED,
                         created_at=1, expires_at=10**10)
            await store.insert_batch(done)
            with pytest.raises(Conflict):
                await svc.cancel(WHO, done.id)
            with pytest.raises(NotFound):
                await svc.cancel(Principal("another project"), batch.id)
        finally:
            await store.close()

    asyncio.run(go())
    assert woken == ["wake", "wake"]

