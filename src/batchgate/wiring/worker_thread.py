"""The worker of `batchgate serve`, on its own thread with its own event loop and its own store connections.

One process still runs both, but the API's event loop never waits behind the thousands of callbacks a busy
worker queues on its loop: an API call then waits at most for the interpreter to switch threads. The API sees
it as a `WorkerView` (services/worker_view.py) and wakes it through `BatchService`'s hook, `notify`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from batchgate.domain.route_state import RouteState
from batchgate.metrics import Metrics
from batchgate.settings import Settings
from batchgate.upstream.router import Router
from batchgate.wiring.parts import running_parts
from batchgate.worker.runner import Worker

log = logging.getLogger("batchgate.worker")

SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while another waits (Python's default: 0.005)
WORKER_NICE = 10  # niceness of the worker's thread (Linux schedules threads one by one)
INSPECT_TIMEOUT = 2.0  # seconds `route_states` waits for the worker's loop


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it comes with uvicorn[standard]): the worker's loop runs every request's I/O."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class WorkerThread:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics  # the API's registry: the worker counts into what GET /metrics shows
        self._thread = threading.Thread(target=self._main, name="batchgate-worker", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._worker: Worker | None = None
        self._router: Router | None = None
        self._error: BaseException | None = None

    async def start(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        except (AttributeError, OSError):  # not Linux, or not allowed: the worker keeps the process's priority
            pass
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._run())
        except BaseException as e:
            if not self._ready.is_set():
                self._error = e
                self._ready.set()
            else:
                log.exception("worker thread stopped with an error")

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_parts(self._settings, with_worker=True, metrics=self._metrics) as parts:
            self._worker = parts.worker
            self._router = parts.router
            self._ready.set()
            await self._stop.wait()

    def notify(self) -> None:
        """Called from the API's thread: new work exists, look now."""
        if self._loop is not None and self._worker is not None:
            self._loop.call_soon_threadsafe(self._worker.notify)

    async def route_states(self) -> list[RouteState] | None:
        """Each route's state, read on the worker's loop, where its gates and limiters change (None when the
        worker is not running). For read-only views, e.g. the dashboard's upstreams page."""
        loop, router = self._loop, self._router
        if loop is None or router is None or not self._thread.is_alive():
            return None

        async def read() -> list[RouteState]:
            now = time.monotonic()
            return [r.state(now) for r in router.routes]

        future = asyncio.run_coroutine_threadsafe(read(), loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), INSPECT_TIMEOUT)

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
