"""Executing one request: admission through the upstream's gate, retries, and the outcome as a result line.

Two kinds of trouble are told apart. Overload (429, or 503 with Retry-After) means the engine is full: the
gate's window shrinks and the request waits and tries again without spending its attempts (for up to
`overload_max_seconds`). Failure (5xx, timeouts, dropped connections) spends an attempt and backs off
exponentially with jitter; a timeout also shrinks the window of the replica it went to (the request waited too
long: congestion). Any other 4xx is final at once.

A third kind is a replica gone (connections refused or reset, 502/503/504 without Retry-After): it counts against
the replica's health (`upstream/pool.py`), and once the replica is taken out the request goes back to the gate for
another replica without spending an attempt (a refused connection never spends one: the request never reached the
server; a reset or a 502 before the replica is out does, since one request can cause it); with every replica down
it waits there, spending none, until one answers or its batch ends. A connect that timed out is such a failure,
not congestion: it leaves the window alone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from batchgate.domain.retry import RetryPolicy, is_retryable
from batchgate.domain.work import RequestResult
from batchgate.metrics import Metrics
from batchgate.upstream.executor import ModelUnavailable, TransportError, UpstreamResponse
from batchgate.upstream.router import Route
from batchgate.worker.outcome import error_result, response_result

log = logging.getLogger("batchgate.worker")


Record = Callable[[RequestResult], Awaitable[None]]


async def _nothing(result: RequestResult) -> None:
    return None


def is_overload(resp: UpstreamResponse) -> bool:
    return resp.status == 429 or (resp.status == 503 and resp.retry_after is not None)


def replica_failure(resp: UpstreamResponse) -> bool:
    """An answer that says the replica is not there (a proxy in front of it, or an engine still loading)."""
    return resp.status in (502, 503, 504) and resp.retry_after is None


def outcome(resp: UpstreamResponse) -> str:
    """The metrics label for an answer."""
    if is_overload(resp):
        return "overloaded"
    return {2: "ok", 4: "http_4xx", 5: "http_5xx"}.get(resp.status // 100, "http_other")


class RequestExecutor:
    def __init__(
        self, policy: RetryPolicy, timeout: float, overload_max_seconds: float = 900.0, metrics: Metrics | None = None
    ) -> None:
        self._metrics = metrics or Metrics()
        self._policy = policy
        self._timeout = timeout
        self._overload_max = overload_max_seconds

    async def run(
        self, route: Route, endpoint: str, line: int, custom_id: str, body: dict[str, Any], key: bytes = b"",
        record: Record | None = None, flow: str = "",
    ) -> RequestResult:
        """Execute one request to its final result. With `record`, the result is handed to it while the request
        still holds its slot at the gate, so the slots bound the answers a crash could lose. `flow` (the batch
        id) is what the gate schedules it as."""
        model = self._metrics.model(body.get("model"))
        result = await self._attempts(route, endpoint, model, line, custom_id, body, key, record or _nothing, flow)
        self._metrics.finished(endpoint, model, result.ok, result.usage)
        return result

    def _final(self, resp: UpstreamResponse, overloaded: bool, attempt: int, first_overload: float | None) -> bool:
        """Whether this answer ends the request (mirrors the retry decisions below)."""
        if overloaded and (first_overload is None or time.monotonic() - first_overload < self._overload_max):
            return False
        return not (is_retryable(resp.status) and not self._policy.gives_up_after(attempt + 1))

    async def _attempts(
        self, route: Route, endpoint: str, model: str, line: int, custom_id: str, body: dict[str, Any], key: bytes,
        record: Record, flow: str = "",
    ) -> RequestResult:
        m = self._metrics
        attempt = 0  # attempts that count against max_attempts
        sent = 0
        first_overload: float | None = None
        who = (flow, line)  # this request, for the replica's health
        while True:
            sent += 1
            failure: TransportError | None = None
            gone = False  # the replica was taken out: try another without spending an attempt
            async with route.gate.admit(key, flow) as permit:
                replica = permit.replica
                executor = replica.executor if replica.executor is not None else route.executor
                try:
                    resp = await executor.send(endpoint, body, self._timeout, permit)
                except TransportError as e:
                    failure = e
                    if e.kind == "timeout" and not e.refused:
                        permit.timed_out()  # congestion: the window shrinks (a connect that timed out: see below)
                    # else the permit is abandoned on exit: a dropped connection says nothing about the engine
                    m.sent(endpoint, model, route.name, e.kind)
                    if e.kind == "connection" or e.refused:
                        # A connect that failed never reached the server: it costs no attempt even before the
                        # replica is out (a timed-out connect too: a host that is off drops what is sent to it).
                        gone = route.pool.failed(replica, e.message, who, e.refused) or e.refused
                except ModelUnavailable as e:  # a local model whose files went missing: retrying won't help
                    m.sent(endpoint, model, route.name, "model_unavailable")
                    result = error_result(line, custom_id, "model_not_found", str(e), sent - 1)
                    await record(result)
                    return result
                else:
                    m.sent(endpoint, model, route.name, outcome(resp), time.monotonic() - permit.started)
                    if replica_failure(resp):
                        gone = route.pool.failed(replica, f"HTTP {resp.status}", who)
                    else:
                        route.pool.succeeded(replica)
                    overloaded = is_overload(resp)
                    if overloaded:
                        permit.overloaded()
                    else:
                        permit.done()
                    if not gone and self._final(resp, overloaded, attempt, first_overload):
                        result = response_result(line, custom_id, resp, sent - 1)
                        await record(result)  # still holding the slot
                        return result
            if gone:
                m.retried(route.name, "replica_down")
                continue
            if failure is not None:
                attempt += 1
                if self._policy.gives_up_after(attempt):
                    code = "upstream_timeout" if failure.kind == "timeout" else "upstream_connection_error"
                    result = error_result(
                        line, custom_id, code, f"{failure.message} Gave up after {attempt} attempts.", sent - 1
                    )
                    await record(result)
                    return result
                delay = self._policy.delay(attempt)
                m.retried(route.name, failure.kind)
                log.debug("retry %s line %d after %s (attempt %d, %.2fs)", route.name, line, failure.kind, attempt,
                          delay)
                await asyncio.sleep(delay)
                continue
            if overloaded:
                now = time.monotonic()
                first_overload = first_overload or now
                if now - first_overload < self._overload_max:
                    m.retried(route.name, "overloaded")
                    await asyncio.sleep(self._policy.delay(1, resp.retry_after))
                    continue
            if is_retryable(resp.status):
                attempt += 1
                if not self._policy.gives_up_after(attempt):
                    delay = self._policy.delay(attempt, resp.retry_after)
                    m.retried(route.name, outcome(resp))
                    log.debug("retry %s line %d after HTTP %d (attempt %d, %.2fs)", route.name, line,
                              resp.status, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
            raise AssertionError("unreachable: _final() decided this answer was not final")
