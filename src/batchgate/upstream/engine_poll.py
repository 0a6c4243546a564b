"""Reading each replica's engine signals (`engine_load.py`) while batchgate sends to it: one poller per replica of
every route whose routing file asks for them (`engine_metrics`), one aiohttp session for all of them.

Every `interval` a poller GETs the engine's `/metrics` (the replica's base URL without its trailing `/v1`, or the
route's `engine_metrics_url`) with a short timeout and hands the reading to `on_load(load, now)`: None when the
GET failed or said nothing readable. For llama.cpp it also asks `/slots` (the slot count, once; every time when
`/metrics` is off). It never raises into the loop:

- **Failures** (no answer, a timeout, an error status, text without the engine's gauges): after `WARN_AFTER` in a
  row, one WARNING, and the interval doubles up to `BACKOFF_MAX` until an answer comes (one INFO line then).
- **Absent** (`auto` only): a URL that answers 404 or 501 (llama.cpp without `--metrics`), or text of no engine
  this reads, `ABSENT_AFTER` times in a row is not asked again; with nothing left to ask the poller stops with one
  INFO line. A plain OpenAI-compatible provider costs three GETs, not one every half second forever.

The API key goes only to the replica's own host and port (an `engine_metrics_url` elsewhere gets none), and never
into a log line: errors are logged by their type and the URL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import aiohttp

from batchgate.upstream.engine_load import EngineKind, EngineLoad, detect, parse_metrics, parse_slots

if TYPE_CHECKING:
    from batchgate.upstream.pool import Replica
    from batchgate.upstream.router import Route

log = logging.getLogger("batchgate.upstream")

MetricsMode = Literal["auto", "vllm", "sglang", "llamacpp", "off"]
OnLoad = Callable[[EngineLoad | None, float], None]

INTERVAL = 0.5  # seconds between readings: a fraction of one request's latency on a busy engine
TIMEOUT = 1.0  # seconds one GET may take; a reading later than this is stale anyway
WARN_AFTER = 3  # failures in a row before the one WARNING and the backoff
BACKOFF_MAX = 30.0  # seconds between readings of an engine that keeps failing
ABSENT_AFTER = 3  # 404s in a row before `auto` stops asking a URL
ABSENT_STATUS = frozenset({404, 501})  # 501: llama.cpp's server started without --metrics (or with --no-slots)


def engine_urls(base_url: str, override: str | None) -> tuple[str, str]:
    """The metrics and slots URLs of the replica at `base_url` (which ends in /v1 as a rule): `override` as is
    when absolute, on the replica's own scheme, host and port when a path; else `/metrics` beside the `/v1`."""
    u = urlsplit(base_url)
    origin = f"{u.scheme}://{u.netloc}"
    root = u.path.rstrip("/").removesuffix("/v1")
    if override is None:
        metrics = origin + root + "/metrics"
    elif override.startswith("/"):
        metrics = origin + override
    else:
        metrics = override
    return metrics, origin + root + "/slots"


def same_origin(a: str, b: str) -> bool:
    ua, ub = urlsplit(a), urlsplit(b)
    return (ua.scheme, ua.hostname, ua.port) == (ub.scheme, ub.hostname, ub.port)


class _Absent(Exception):
    """The URL answered 404/501, or (in `auto`) text of no engine this module reads."""


class _Refused(Exception):
    """The URL answered another status than 200."""


class EnginePoller:
    """The poller of one replica. `mode` is the route's `engine_metrics` (not "off")."""

    def __init__(self, label: str, mode: MetricsMode, metrics_url: str, slots_url: str, headers: dict[str, str],
                 on_load: OnLoad, session: aiohttp.ClientSession, interval: float = INTERVAL,
                 timeout: float = TIMEOUT, backoff_max: float = BACKOFF_MAX) -> None:
        self.label = label  # "route replica", for log lines
        self.mode = mode
        self.kind: EngineKind | None = _kind(mode)
        self.metrics_url: str | None = metrics_url
        # /slots: llama.cpp only; in `auto` asked while the kind is unknown and /metrics gives nothing.
        self.slots_url: str | None = slots_url if mode in ("auto", "llamacpp") else None
        self.slots: int | None = None
        self.headers = headers
        self.on_load = on_load
        self.interval = interval
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.backoff_max = backoff_max
        self.failures = 0  # readings in a row that failed
        self.reason = ""  # why the last one failed
        self._absent: dict[str, int] = {}  # URL -> 404s in a row
        self._session = session
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"engine-poll {self.label}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        delay = self.interval
        while self.metrics_url is not None or self.slots_url is not None:
            load = await self.read()
            self._deliver(load)
            if load is not None:
                if self.failures >= WARN_AFTER:
                    log.info("engine metrics of %s answer again", self.label)
                self.failures = 0
                delay = self.interval
            elif self.reason:
                self.failures += 1
                if self.failures == WARN_AFTER:
                    log.warning("engine metrics of %s: %d readings in a row failed (%s); asking every %.0f s at "
                                "most until one answers", self.label, WARN_AFTER, self.reason, self.backoff_max)
                if self.failures >= WARN_AFTER:
                    delay = min(self.backoff_max, delay * 2)
            await asyncio.sleep(delay)
        log.info("engine metrics of %s: no engine's gauges at /metrics or /slots (404 or other text %d times in a "
                 "row); not asking again", self.label, ABSENT_AFTER)

    def _deliver(self, load: EngineLoad | None) -> None:
        try:
            self.on_load(load, time.monotonic())
        except Exception:  # the limiter's hook is not ours to crash: one bad reading must not end the polling
            log.exception("engine metrics of %s: the reading was refused", self.label)

    async def read(self) -> EngineLoad | None:
        """One reading (None: none; `reason` says why when it was a failure, and is "" when absent)."""
        self.reason = ""
        load: EngineLoad | None = None
        if self.metrics_url is not None:
            load = await self._read_metrics(self.metrics_url)
        if self.slots_url is not None and (load is None or self.slots is None) and self.kind in (None, "llamacpp"):
            slots = await self._read_slots(self.slots_url)
            if slots is not None:
                self.slots = slots.slots
                if load is None:
                    self.reason = ""  # /slots alone is a reading (llama.cpp without --metrics)
                    load = slots
        if load is not None and self.slots is not None and self.kind in (None, "llamacpp"):
            load = replace(load, slots=self.slots)
        return load

    async def _read_metrics(self, url: str) -> EngineLoad | None:
        try:
            text = (await self._get(url)).decode("utf-8", errors="replace")
            kind = self.kind or detect(text)
            load = parse_metrics(text, kind) if kind is not None else None
            if load is None:
                if self.kind is None:  # `auto`, and no engine found yet
                    raise _Absent
                self.reason = f"GET {url}: no {self.kind} gauges in the answer"
                return None
        except _Absent:
            self._count_absent(url)
            return None
        except (_Refused, aiohttp.ClientError, TimeoutError, OSError) as e:
            self.reason = f"GET {url}: {_why(e)}"
            return None
        self._absent.pop(url, None)
        if self.kind is None and kind is not None:
            self.kind = kind
            log.info("engine metrics of %s: %s (%s)", self.label, kind, url)
        return load

    async def _read_slots(self, url: str) -> EngineLoad | None:
        try:
            load = parse_slots(await self._get(url))
            if load is None:
                raise _Absent
        except _Absent:
            if self.mode == "auto":
                self._count_absent(url)
            elif not self.reason:
                self.reason = f"GET {url}: not a list of slots"
            return None
        except (_Refused, aiohttp.ClientError, TimeoutError, OSError) as e:
            self.reason = self.reason or f"GET {url}: {_why(e)}"
            return None
        self._absent.pop(url, None)
        return load

    def _count_absent(self, url: str) -> None:
        """A 404 (or no engine's text): `auto` stops asking `url` after ABSENT_AFTER in a row, until it has found
        the engine; after that (and with an explicit kind) it is a failure like any other."""
        n = self._absent[url] = self._absent.get(url, 0) + 1
        if n < ABSENT_AFTER or self.mode != "auto" or self.kind is not None:
            self.reason = self.reason or f"GET {url}: not there"
            return
        if url == self.metrics_url:
            self.metrics_url = None
        if url == self.slots_url:
            self.slots_url = None

    async def _get(self, url: str) -> bytes:
        async with self._session.get(url, headers=self.headers, timeout=self.timeout,
                                     allow_redirects=False) as resp:
            if resp.status in ABSENT_STATUS:
                raise _Absent
            if resp.status != 200:
                raise _Refused(f"HTTP {resp.status}")
            return await resp.read()


def _kind(mode: MetricsMode) -> EngineKind | None:
    return mode if mode in ("vllm", "sglang", "llamacpp") else None


def _why(error: Exception) -> str:
    """A failure in words that never carry a header: the status, else the exception's type."""
    return str(error) if isinstance(error, _Refused) else type(error).__name__


class EngineSignals:
    """The pollers of every route that asks for engine metrics: `start(routes)` on the loop that sends through
    them (each reading updates `replica.engine_load` and calls the limiter's `on_engine_load` when it has one),
    `close()` to stop them all."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.pollers: list[EnginePoller] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self, routes: Sequence[Route]) -> None:
        for route in routes:
            if route.engine_metrics == "off":
                continue
            for replica in route.pool.replicas:
                base = getattr(replica.executor, "base_url", None)
                if not isinstance(base, str):
                    continue
                if self._session is None:
                    self._session = aiohttp.ClientSession(headers={"User-Agent": "batchgate"})
                metrics, slots = engine_urls(base, route.engine_metrics_url)
                auth = getattr(replica.executor, "auth_headers", None)
                headers = auth() if auth is not None and same_origin(metrics, base) else {}
                poller = EnginePoller(f"{route.name} {replica.name}", route.engine_metrics, metrics, slots,
                                      headers, reading_for(replica), self._session, self.interval)
                poller.start()
                self.pollers.append(poller)

    async def close(self) -> None:
        for poller in self.pollers:
            await poller.stop()
        self.pollers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None


def reading_for(replica: Replica) -> OnLoad:
    """What a reading of `replica`'s engine does: kept on the replica, and told to its limiter if it listens."""

    def on_load(load: EngineLoad | None, now: float) -> None:
        replica.engine_load = load
        hook = getattr(replica.limiter, "on_engine_load", None)
        if hook is not None:
            hook(load, now)

    return on_load
