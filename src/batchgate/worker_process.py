"""`batchgate worker`: a process that only runs the worker, until SIGTERM or SIGINT.

On the signal it stops claiming, lets running chunks finish for a short grace period, cancels the rest
(their finished results are flushed), and releases every lease it still holds, so other workers take the
work over at once instead of after the lease timeout.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from batchgate.runtime import settle_gc
from batchgate.settings import Settings
from batchgate.wiring.parts import running_parts

log = logging.getLogger("batchgate.worker")


async def run_worker_process(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_parts(settings, with_worker=True) as parts:
            assert parts.worker is not None
            settle_gc()
            log.info("worker process ready (%s)", parts.worker.id)
            await stop.wait()
            log.info("stopping worker %s: no new claims, releasing leases", parts.worker.id)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("worker stopped")
