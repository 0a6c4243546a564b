"""Executing one request: send, retry transient failures with backoff, turn the outcome into a result line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from batchgate.domain.retry import RetryPolicy, is_retryable
from batchgate.domain.work import RequestResult
from batchgate.upstream.executor import TransportError
from batchgate.upstream.router import Route
from batchgate.worker.outcome import error_result, response_result

log = logging.getLogger("batchgate.worker")


class RequestExecutor:
    def __init__(self, policy: RetryPolicy, timeout: float) -> None:
        self._policy = policy
        self._timeout = timeout

    async def run(self, route: Route, endpoint: str, line: int, custom_id: str, body: dict[str, Any]) -> RequestResult:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with route.semaphore:  # the slot is held only while sending, never while backing off
                    resp = await route.executor.send(endpoint, body, self._timeout)
            except TransportError as e:
                if self._policy.gives_up_after(attempt):
                    code = "upstream_timeout" if e.kind == "timeout" else "upstream_connection_error"
                    return error_result(
                        line, custom_id, code, f"{e.message} Gave up after {attempt} attempts.", attempt - 1
                    )
                delay = self._policy.delay(attempt)
                log.debug("retry %s line %d after %s (attempt %d, %.2fs)", route.name, line, e.kind, attempt, delay)
                await asyncio.sleep(delay)
                continue
            if is_retryable(resp.status) and not self._policy.gives_up_after(attempt):
                delay = self._policy.delay(attempt, resp.retry_after)
                log.debug("retry %s line %d after HTTP %d (attempt %d, %.2fs)", route.name, line, resp.status,
                          attempt, delay)
                await asyncio.sleep(delay)
                continue
            return response_result(line, custom_id, resp, attempt - 1)
