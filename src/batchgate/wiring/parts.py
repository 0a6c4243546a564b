"""Build every part from Settings and connect them. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from batchgate.blobs.base import BlobStore
from batchgate.blobs.factory import make_blobs
from batchgate.metrics import Metrics
from batchgate.services.auth import AuthService
from batchgate.services.batches import BatchService
from batchgate.services.files import FileService
from batchgate.services.uploads import UploadService
from batchgate.settings import Settings
from batchgate.store.base import Store
from batchgate.store.factory import make_store
from batchgate.upstream.engine_poll import EngineSignals
from batchgate.upstream.router import Router
from batchgate.wiring.routes import build_router
from batchgate.worker.runner import Worker


@dataclass
class Parts:
    settings: Settings
    store: Store
    blobs: BlobStore
    router: Router
    auth: AuthService
    files: FileService
    uploads: UploadService
    batches: BatchService
    worker: Worker | None
    metrics: Metrics


@asynccontextmanager
async def running_parts(
    settings: Settings, with_worker: bool, metrics: Metrics | None = None, wake: Callable[[], None] | None = None,
) -> AsyncIterator[Parts]:
    """Open storage and upstreams, start the worker if asked; undo all of it on exit. `metrics`: the registry
    to count into, when the API of the same process serves it (else a private one). `wake`: what a created or
    cancelled batch calls to wake a worker that runs elsewhere in this process (with_worker wakes its own)."""
    router = build_router(settings)
    store = make_store(settings)
    blobs = make_blobs(settings)
    await store.open()
    await blobs.open()
    await router.start()
    worker: Worker | None = None
    # Engine signals feed the limiters that send: only where a worker runs (an API-only process sends nothing).
    signals = EngineSignals()
    try:
        if with_worker:
            await signals.start(router.routes)
        files = FileService(store, blobs, settings.max_upload_bytes)
        metrics = metrics or Metrics()
        if with_worker:
            worker = Worker(settings, store, blobs, router, files, metrics)
        batches = BatchService(store, settings.window_scale, wake=worker.notify if worker is not None else wake)
        parts = Parts(
            settings, store, blobs, router, AuthService(store), files, UploadService(store, blobs, files), batches,
            worker, metrics,
        )
        if worker is not None:
            await worker.start()
        yield parts
    finally:
        if worker is not None:
            await worker.stop()
            await store.release_owner(worker.id)  # whatever stop() interrupted is free for others now
        await signals.close()
        await router.close()
        await blobs.close()
        await store.close()
