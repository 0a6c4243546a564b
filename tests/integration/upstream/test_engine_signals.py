"""Engine signals and engine priorities against fake upstreams in this process (real HTTP over loopback): a route
that asks for `engine_metrics` reads each replica's `/metrics` into `replica.engine_load` and its limiter's hook,
`/metrics` and the route state show it, `auto` stops asking a server without metrics after three 404s, an explicit
kind warns once and backs off, the key goes only to the replica's own host; a route with `batch_priority` sends
its `priority` on the endpoints an engine schedules and one without sends none. Nothing here is timed: the tests
wait for states (each poll is 10 ms apart), never for durations."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fake_upstream import FakeState, create_app

from batchgate.metrics import Metrics
from batchgate.settings import Settings
from batchgate.upstream.engine_load import EngineLoad
from batchgate.upstream.engine_poll import EngineSignals
from batchgate.upstream.http import HttpUpstream
from batchgate.upstream.limiter import AdaptiveLimiter
from batchgate.upstream.router import Route
from batchgate.wiring.parts import running_parts
from batchgate.wiring.routes import build_router


class Fake:
    """A fake upstream on a port of its own."""

    def __init__(self) -> None:
        self.state = FakeState()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(create_app(self.state), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def sync(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))  # type: ignore[arg-type]

    return run


@asynccontextmanager
async def fakes(n: int) -> AsyncIterator[list[Fake]]:
    made = [Fake() for _ in range(n)]
    try:
        for f in made:
            await f.start()
        yield made
    finally:
        for f in made:
            await f.stop()


async def until(check: Callable[[], bool]) -> None:
    """Wait for a state the pollers reach on their own, a step at a time: untimed."""
    for _ in range(100_000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the state never came")


def routes_from(tmp_path: Path, toml: str) -> list[Route]:
    config = tmp_path / "routes.toml"
    config.write_text(toml)
    return build_router(Settings(config=config, data_dir=tmp_path), {"KEY": "sk-secret"}).routes


class Listening(AdaptiveLimiter):
    """A limiter with the hook engine signals call (the yielding rule's), recording what it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[EngineLoad | None] = []

    def on_engine_load(self, load: EngineLoad | None, now: float) -> None:
        self.told.append(load)


@sync
async def test_the_poller_reads_each_replicas_engine_and_follows_it(tmp_path: Path) -> None:
    async with fakes(2) as (a, b):
        a.state.set_knobs({"engine_metrics": {"running": 3, "waiting": 1, "kv": 0.25}})
        b.state.set_knobs({"engine_metrics": {"running": 7, "waiting": 0, "kv": 0.5}})
        [route] = routes_from(tmp_path, f'[[upstreams]]\nname = "pool"\nurls = ["{a.url}", "{b.url}"]\n'
                                        'engine_metrics = "vllm"\n')
        ra, rb = route.pool.replicas
        ra.limiter = Listening()
        signals = EngineSignals(interval=0.01)
        await signals.start([route])
        try:
            await until(lambda: ra.engine_load is not None and rb.engine_load is not None)
            assert ra.engine_load == EngineLoad(running=3.0, waiting=1.0, slots=None, kv_usage=0.25)
            assert rb.engine_load == EngineLoad(running=7.0, waiting=0.0, slots=None, kv_usage=0.5)
            assert isinstance(ra.limiter, Listening) and ra.limiter.told[-1] == ra.engine_load

            a.state.set_knobs({"engine_metrics": {"running": 0, "waiting": 9, "kv": 0.75}})
            await until(lambda: ra.engine_load is not None and ra.engine_load.waiting == 9.0)
            assert ra.engine_load == EngineLoad(running=0.0, waiting=9.0, slots=None, kv_usage=0.75)

            replicas = route.state(0.0).replicas
            assert [(r.engine_running, r.engine_waiting) for r in replicas] == [(0.0, 9.0), (7.0, 0.0)]
            metrics = Metrics()
            metrics.watch_routes([route])
            text = metrics.render({}).decode()
            assert f'batchgate_engine_waiting{{replica="{a.url}",upstream="pool"}} 9.0' in text
            assert f'batchgate_engine_running{{replica="{b.url}",upstream="pool"}} 7.0' in text
            assert f'batchgate_engine_kv_cache_usage{{replica="{a.url}",upstream="pool"}} 0.75' in text

            await b.stop()  # the engine goes away: its readings say so (None), the other's go on
            await until(lambda: rb.engine_load is None)
        finally:
            await signals.close()
        assert not any(p.running for p in signals.pollers)


@sync
async def test_auto_stops_asking_a_server_without_metrics_after_three_404s(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "batchgate.upstream")
    async with fakes(1) as (fake,):
        [route] = routes_from(tmp_path, f'[[upstreams]]\nname = "plain"\nurl = "{fake.url}"\n'
                                        'engine_metrics = "auto"\n')
        signals = EngineSignals(interval=0.01)
        await signals.start([route])
        try:
            [poller] = signals.pollers
            await until(lambda: not poller.running)
        finally:
            await signals.close()
        # Three GETs of /metrics (and of /slots, llama.cpp's), then none: not one every interval forever.
        assert sum(fake.state.metrics_auth.values()) == 3
        assert route.pool.replicas[0].engine_load is None
        said = [r.getMessage() for r in caplog.records if "engine metrics of plain" in r.getMessage()]
        assert said == [f"engine metrics of plain {fake.url}: no engine's gauges at /metrics or /slots (404 or "
                        "other text 3 times in a row); not asking again"]
        assert all(r.levelno == logging.INFO for r in caplog.records if "engine metrics" in r.getMessage())


@sync
async def test_auto_finds_the_engine_and_an_explicit_kind_warns_once_when_it_fails(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "batchgate.upstream")
    async with fakes(2) as (vllm, plain):
        vllm.state.set_knobs({"engine_metrics": {"running": 2, "waiting": 5}})
        auto, wrong = routes_from(tmp_path, f'[[upstreams]]\nname = "auto"\nurl = "{vllm.url}"\nmodels = "a"\n'
                                            'engine_metrics = "auto"\n\n'
                                            f'[[upstreams]]\nname = "wrong"\nurl = "{plain.url}"\nmodels = "b"\n'
                                            'engine_metrics = "sglang"\n')
        signals = EngineSignals(interval=0.01)
        await signals.start([auto, wrong])
        try:
            found, failing = signals.pollers
            await until(lambda: failing.failures >= 5 and auto.pool.replicas[0].engine_load is not None)
            assert found.kind == "vllm" and found.running
            assert auto.pool.replicas[0].engine_load == EngineLoad(2.0, 5.0, None, 0.0)
            assert failing.running and wrong.pool.replicas[0].engine_load is None  # still asking, backed off
        finally:
            await signals.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"engine metrics of wrong {plain.url}: 3 readings in a row failed (GET "
                        f"http://127.0.0.1:{plain.port}/metrics: not there); asking every 30 s at most until one "
                        "answers"]
    assert f"engine metrics of auto {vllm.url}: vllm (http://127.0.0.1:{vllm.port}/metrics)" in caplog.messages


@sync
async def test_auto_keeps_asking_an_engine_it_found_when_its_metrics_go_away(tmp_path: Path) -> None:
    async with fakes(1) as (fake,):
        fake.state.set_knobs({"engine_metrics": {"running": 1, "waiting": 1}})
        [route] = routes_from(tmp_path, f'[[upstreams]]\nname = "v"\nurl = "{fake.url}"\nengine_metrics = "auto"\n')
        replica = route.pool.replicas[0]
        signals = EngineSignals(interval=0.01)
        await signals.start([route])
        try:
            [poller] = signals.pollers
            await until(lambda: replica.engine_load is not None)
            fake.state.set_knobs({"engine_metrics": None})  # a restart behind a proxy, say: 404 for a while
            await until(lambda: poller.failures >= 4)
            assert poller.running and poller.metrics_url is not None and replica.engine_load is None
            fake.state.set_knobs({"engine_metrics": {"running": 2, "waiting": 0}})
            await until(lambda: replica.engine_load is not None)
            assert replica.engine_load == EngineLoad(2.0, 0.0, None, 0.0) and poller.failures == 0
        finally:
            await signals.close()


@sync
async def test_the_key_goes_to_the_replicas_own_host_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with fakes(3) as (own, exporter, down):
        for f in (own, exporter):
            f.state.set_knobs({"engine_metrics": {"running": 1, "waiting": 0}})
        await down.stop()  # refuses connections: its failures are logged
        routes = routes_from(tmp_path, f'[[upstreams]]\nname = "own"\nurl = "{own.url}"\nmodels = "a"\n'
                                       'api_key_env = "KEY"\nengine_metrics = "vllm"\n\n'
                                       f'[[upstreams]]\nname = "exported"\nurl = "{own.url}"\nmodels = "b"\n'
                                       f'api_key_env = "KEY"\nengine_metrics_url = "{exporter.url[:-3]}/metrics"\n\n'
                                       f'[[upstreams]]\nname = "down"\nurl = "{down.url}"\nmodels = "c"\n'
                                       'api_key_env = "KEY"\nengine_metrics = "vllm"\n')
        signals = EngineSignals(interval=0.01)
        await signals.start(routes)
        try:
            await until(lambda: all(r.pool.replicas[0].engine_load is not None for r in routes[:2])
                        and signals.pollers[2].failures >= 3)
        finally:
            await signals.close()
        assert set(own.state.metrics_auth) == {"Bearer sk-secret"}
        assert set(exporter.state.metrics_auth) == {""}
    assert "sk-secret" not in caplog.text
    assert f"GET http://127.0.0.1:{down.port}/metrics: ClientConnectorError" in caplog.text


@sync
async def test_the_wired_worker_parts_poll_and_the_api_only_parts_do_not(tmp_path: Path) -> None:
    async with fakes(1) as (fake,):
        fake.state.set_knobs({"engine_metrics": {"running": 4, "waiting": 2}})
        config = tmp_path / "routes.toml"
        config.write_text(f'[[upstreams]]\nname = "vllm"\nurl = "{fake.url}"\nengine_metrics = "auto"\n')
        settings = Settings(config=config, data_dir=tmp_path, poll_interval=0.05)
        async with running_parts(settings, with_worker=False) as parts:
            await asyncio.sleep(0)
            assert parts.router.routes[0].pool.replicas[0].engine_load is None
        assert sum(fake.state.metrics_auth.values()) == 0
        async with running_parts(settings, with_worker=True) as parts:
            replica = parts.router.routes[0].pool.replicas[0]
            await until(lambda: replica.engine_load is not None)
            assert replica.engine_load == EngineLoad(4.0, 2.0, None, 0.0)


CHAT = "/v1/chat/completions"


@sync
async def test_batch_priority_is_sent_on_scheduled_endpoints_and_wins_over_the_lines(tmp_path: Path) -> None:
    async with fakes(2) as (low, plain):
        with_priority, without = routes_from(
            tmp_path, f'[[upstreams]]\nname = "batch"\nurl = "{low.url}"\nmodels = "a"\nbatch_priority = 10\n\n'
                      f'[[upstreams]]\nname = "plain"\nurl = "{plain.url}"\nmodels = "b"\n')
        up, other = with_priority.executor, without.executor
        assert isinstance(up, HttpUpstream) and isinstance(other, HttpUpstream)
        for e in (up, other):
            await e.start()
        try:
            chat = {"model": "a", "messages": [{"role": "user", "content": "hi"}]}
            own = {**chat, "priority": -5}  # the line asks to jump the queue: the operator's value wins
            for endpoint, body in ((CHAT, chat), (CHAT, own), ("/v1/completions", {"model": "a", "prompt": "x"}),
                                   ("/v1/embeddings", {"model": "a", "input": "x"}),
                                   ("/v1/responses", {"model": "a", "input": "x"})):
                assert (await up.send(endpoint, body, 10)).status == 200
            assert (await up.send("/v1/moderations", {"input": "x"}, 10)).status == 200
            assert "priority" not in chat and own["priority"] == -5  # the line's body is not changed
            # Message Batches lines translated to chat completions carry it too.
            message = {"model": "a", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
            assert (await up.send("/v1/messages", message, 10)).status == 200
            assert (await other.send(CHAT, chat, 10)).status == 200
            assert (await other.send(CHAT, own, 10)).status == 200
        finally:
            for e in (up, other):
                await e.close()
        assert low.state.priorities == {"10": 6, "none": 1}  # five scheduled + the translated message; moderation
        assert plain.state.priorities == {"none": 1, "-5": 1}  # no batch_priority: the line's own, untouched
