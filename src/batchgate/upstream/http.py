"""An OpenAI-compatible HTTP server as an Executor, over a pool of keep-alive connections (`http11`).

`priority` (the routing file's `batch_priority`) goes into the JSON body of every request to an endpoint an engine
schedules (`PRIORITY_ENDPOINTS`), replacing one the line had: the operator decides, not the batch author. It is
added where the body is serialized, one shallow copy per request sent. docs/configuration.md ("Engine priorities")
says which engines honour it and how to start them."""

from __future__ import annotations

import email.utils
import time
from functools import partial
from typing import Any

import orjson

from batchgate.domain.batch import LINE_ENDPOINTS
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.upstream.executor import Sending, TransportError, UpstreamResponse
from batchgate.upstream.http11 import HttpError, HttpTimeout, Pool
from batchgate.upstream.messages import MessagesMode, via_chat
from batchgate.upstream.probe import answers

# The endpoints whose requests vLLM and SGLang schedule by `priority` (vLLM's chat, completion, responses and
# embedding requests carry the field; its Anthropic /v1/messages ignores it, so "translate" is the way there).
PRIORITY_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings",
                                MESSAGES_ENDPOINT})


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


class HttpUpstream:
    def __init__(
        self, name: str, base_url: str, api_key: str | None, max_connections: int, connect_timeout: float,
        messages: MessagesMode = "translate", priority: int | None = None,
    ) -> None:
        """`messages`: how Anthropic Messages lines run: "native" posts them to the upstream's own /v1/messages
        (vLLM, llama.cpp's server), "translate" sends them as chat completions and translates the answer.
        `priority`: the `priority` field every request to PRIORITY_ENDPOINTS carries (None: the line's own)."""
        self.name = name
        self.messages = messages
        self.priority = priority
        self.base_url = base_url.rstrip("/")
        headers = {"Content-Type": "application/json", "User-Agent": "batchgate"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if messages == "native":
            # What servers of Anthropic's API read (OpenAI-compatible ones ignore them).
            headers["anthropic-version"] = "2023-06-01"
            if api_key:
                headers["x-api-key"] = api_key
        self._headers = headers
        self._pool = Pool(self.base_url, headers, max_connections, connect_timeout)

    def __repr__(self) -> str:  # never shows the key
        return f"HttpUpstream({self.name!r}, {self.base_url!r})"

    async def start(self) -> None:
        self._pool.start()

    async def close(self) -> None:
        self._pool.close()

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float,
                   sending: Sending | None = None) -> UpstreamResponse:
        if endpoint == MESSAGES_ENDPOINT and self.messages == "translate":
            return await via_chat(partial(self._post, sending=sending), body, timeout)
        return await self._post(endpoint, body, timeout, sending)

    async def _post(self, endpoint: str, body: dict[str, Any], timeout: float,
                    sending: Sending | None = None) -> UpstreamResponse:
        if not self._pool.started:
            raise RuntimeError("upstream not started")
        if self.priority is not None and endpoint in PRIORITY_ENDPOINTS:
            body = {**body, "priority": self.priority}
        # endpoint is one of the fixed batch endpoints ("/v1/..."); the upstream base already ends in /v1
        try:
            resp = await self._pool.post(endpoint.removeprefix("/v1"), orjson.dumps(body), timeout, sending)
        except HttpTimeout as e:
            # A connect that failed (refused, unreachable, timed out) is chained to its OSError; a reset, a close
            # or a request that timed out is not: only the first never reached the server.
            raise TransportError("timeout", str(e), refused=isinstance(e.__cause__, OSError)) from e
        except HttpError as e:
            raise TransportError("connection", str(e), refused=isinstance(e.__cause__, OSError)) from e
        status = resp.status
        # Retry-After only matters on the answers that are retried.
        wait = parse_retry_after(resp.headers) if status == 429 or status >= 500 else None
        return UpstreamResponse(status, resp.body, resp.headers.get("x-request-id"), wait)

    async def probe(self) -> bool:
        """Whether the server answers again (`GET {base}/models`), for a replica taken out of its pool."""
        return await answers(self.base_url, self._headers)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header its requests carry ({} without a key), for GETs to the same server."""
        return {k: v for k, v in self._headers.items() if k == "Authorization"}

    def check_model(self, model: str) -> None:
        return None

    def list_models(self) -> list[str]:
        return []

    def endpoints(self, model: str) -> tuple[str, ...]:
        # Requests are forwarded to the same path on the upstream, whatever it is; what it lacks answers 404.
        return LINE_ENDPOINTS
