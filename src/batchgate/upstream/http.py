"""An OpenAI-compatible HTTP server as an Executor, over one pooled aiohttp session."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import aiohttp
import orjson

from batchgate.upstream.executor import TransportError, UpstreamResponse


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
        self, name: str, base_url: str, api_key: str | None, max_connections: int, connect_timeout: float
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"HttpUpstream({self.name!r}, {self.base_url!r})"

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300, enable_cleanup_closed=True)
        headers = {"Content-Type": "application/json", "User-Agent": "batchgate"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._session = aiohttp.ClientSession(connector=connector, headers=headers, auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, endpoint: str) -> str:
        # endpoint is one of the fixed batch endpoints ("/v1/..."); the upstream base already ends in /v1
        return self.base_url + endpoint.removeprefix("/v1")

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float) -> UpstreamResponse:
        if self._session is None:
            raise RuntimeError("upstream not started")
        t = self._timeouts.get(timeout)
        if t is None:
            t = self._timeouts[timeout] = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        try:
            async with self._session.post(
                self._url(endpoint), data=orjson.dumps(body), timeout=t, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                status = resp.status
                # Retry-After only matters on the answers that are retried.
                wait = parse_retry_after(resp.headers) if status == 429 or status >= 500 else None
                return UpstreamResponse(status, raw, resp.headers.get("x-request-id"), wait)
        except TimeoutError as e:
            raise TransportError("timeout", f"The upstream did not answer within {timeout:g} seconds.") from e
        except aiohttp.ClientError as e:
            raise TransportError("connection", f"Connection to the upstream failed: {type(e).__name__}.") from e
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            raise TransportError("connection", f"Connection to the upstream failed: {type(e).__name__}.") from e

    def check_model(self, model: str) -> None:
        return None

    def list_models(self) -> list[str]:
        return []
