"""A real webhook receiver for the tests: an aiohttp server on loopback, on a thread with its own event loop.
It records every request (headers, raw body, when) and answers each path from a plan of statuses (then 200)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._plans: dict[str, list[int]] = defaultdict(list)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("webhook receiver did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def plan(self, path: str, statuses: list[int]) -> None:
        """Answer the next requests to `path` with these statuses, in order; 200 after them."""
        with self._lock:
            self._plans["/" + path.lstrip("/")] = list(statuses)

    def requests(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if r.path == "/" + path.lstrip("/")]

    def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        """At least `count` requests to `path`, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: {len(got)} webhook requests after {timeout}s, wanted {count}")
            time.sleep(0.05)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # -- the server, on its own thread ------------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._started.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            plan = self._plans[request.path]
            status = plan.pop(0) if plan else 200
            self._received.append(Received(request.path, dict(request.headers), body, time.time(), status))
        return web.Response(status=status, text="ok" if status < 300 else "not now")
