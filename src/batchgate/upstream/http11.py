"""A lean HTTP/1.1 client for upstream calls: a keep-alive connection pool of asyncio protocols, parsed by
httptools (the parser uvicorn uses).

The batch path sends tens of thousands of small POSTs and reads small JSON answers, and the client's own
CPU per request bounds how fast one worker can go. aiohttp's client spends 2-4x the CPU per request of this
one (140-220 us against 45-65 us here; `bench/clients.py` measures both side by side), so this one sends
upstream requests; aiohttp stays for the rest (webhooks).

What it does: one request at a time per connection (no pipelining), `Content-Length` request bodies,
responses with a length, chunked or delimited by the connection's close, gzip/deflate answers decoded,
TLS for https. New connections are paced (a few connects at once, and per second at most as many as are
open), and connections idle for 4 s are closed. Failures are reported, never retried here: a connection
that breaks before its answer may have been a request the server read (the caller's retry policy decides,
and counts the attempt). An idle connection the server closes leaves the pool as soon as the close
arrives."""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from batchgate.upstream.executor import Sending

# Answer headers the caller can read (all others are skipped while parsing).
KEPT_HEADERS = frozenset((b"retry-after", b"retry-after-ms", b"x-request-id", b"content-encoding"))
MAX_BODY = 256 * 1024 * 1024  # an answer larger than this is refused, not buffered
# New connections are paced: a server may serve connections with a fixed pool of threads (llama.cpp's has its
# slots + 4), where a burst of new connections sits unread while the threads keep their keep-alive ones.
MAX_CONNECTING = 8  # connects in progress at once
CONNECT_RATE_MIN = 16  # new connections per second: at least this many, at most as many as are open (x2 a second)
IDLE_CLOSE = 4.0  # seconds: idle connections are closed first (under the usual 5 s keep-alive of servers)


class HttpError(Exception):
    """No answer: the connection failed, broke or the answer was not valid HTTP."""


class HttpTimeout(HttpError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names, only KEPT_HEADERS
    body: bytes


class _Connection(asyncio.Protocol):
    __slots__ = ("_body", "_delimited", "_fut", "_headers", "_headers_done", "_parser", "_pool", "_size",
                 "_timer", "transport")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._fut: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._delimited = False  # the answer says where its body ends (a length or chunks)

    # -- asyncio.Protocol ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pool._forget(self)
        if self._fut is None or self._fut.done():
            return
        if self._headers_done and self._ends_at_close():
            # An answer without a length ends where the connection does.
            self._finish()
            return
        self._fail(HttpError("The upstream closed the connection" + (f": {exc}" if exc else ".")))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpError("The upstream switched protocols."))
        except httptools.HttpParserError as e:
            self._fail(HttpError(f"The upstream's answer is not valid HTTP: {e}"))

    # -- httptools callbacks --------------------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in KEPT_HEADERS:
            self._headers[name.decode()] = value.decode("latin-1")
        elif name == b"content-length" or name == b"transfer-encoding":
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            self._fail(HttpError(f"The upstream's answer is larger than {MAX_BODY} bytes."))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._fut is not None and not self._fut.done():
            self._finish()

    # -- one exchange -------------------------------------------------------------------------------------
    def send(
        self, loop: asyncio.AbstractEventLoop, request: bytes, remaining: float, timeout: float
    ) -> asyncio.Future[Response]:
        """Write `request`; its answer is due within `remaining` seconds (of the caller's `timeout`)."""
        self._fut = fut = loop.create_future()
        self._headers = {}
        self._body = []
        self._size = 0
        self._headers_done = self._delimited = False
        self._timer = loop.call_later(remaining, self._on_timeout, timeout)
        self.transport.write(request)  # type: ignore[union-attr]
        return fut

    def _ends_at_close(self) -> bool:
        status = self._parser.get_status_code()
        return not self._delimited and status >= 200 and status not in (204, 304)

    def _finish(self) -> None:
        fut, self._fut = self._fut, None
        self._cancel_timer()
        status = self._parser.get_status_code()
        body = b"".join(self._body)
        self._body = []
        encoding = self._headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            try:
                body = zlib.decompress(body, 47)  # gzip or zlib header, detected
            except zlib.error:
                body = _raw_deflate(body)
        keep = self.transport is not None and self._parser.should_keep_alive()
        if fut is not None and not fut.done():
            fut.set_result(Response(status, self._headers, body))
        if keep:
            self._pool._release(self)
        else:
            self.close()

    def _fail(self, error: HttpError) -> None:
        fut, self._fut = self._fut, None
        self._cancel_timer()
        self.close()
        if fut is not None and not fut.done():
            fut.set_exception(error)

    def _on_timeout(self, timeout: float) -> None:
        self._timer = None
        self._fail(HttpTimeout(f"The upstream did not answer within {timeout:g} seconds."))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abandon(self) -> None:
        """The caller stopped waiting (cancelled): the answer may still come, so the connection can't be reused."""
        self._fut = None
        self._cancel_timer()
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self._pool._forget(self)


def _raw_deflate(body: bytes) -> bytes:
    try:
        return zlib.decompress(body, -15)
    except zlib.error:
        return body  # not what it said: the caller sees bytes that don't parse as JSON


class Pool:
    """Keep-alive connections to one origin, at most `limit` open at once."""

    def __init__(
        self, base_url: str, headers: dict[str, str], limit: int, connect_timeout: float,
        tls: ssl.SSLContext | None = None, idle_close: float = IDLE_CLOSE,
    ) -> None:
        """`tls`: for https, the context that verifies the server (default: the system's CAs, or the file
        named by SSL_CERT_FILE). `idle_close`: seconds after which an idle connection is closed."""
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.path = u.path.rstrip("/")
        self._ssl: ssl.SSLContext | None = None
        if u.scheme == "https":
            self._ssl = tls or ssl.create_default_context()
        default_port = self.port == (443 if u.scheme == "https" else 80)
        host = self.host if ":" not in self.host else f"[{self.host}]"
        fixed = {"Host": host if default_port else f"{host}:{self.port}", "Accept-Encoding": "gzip, deflate",
                 **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._idle: dict[_Connection, float] = {}  # -> idle since; ordered: the newest last, any removed in O(1)
        self._open: set[_Connection] = set()
        self._connecting = 0
        self._connects: deque[float] = deque()  # when the connects of the last second began
        self._pacing: asyncio.TimerHandle | None = None
        self._idle_close = idle_close
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.started = False

    async def post(self, path: str, body: bytes, timeout: float, sending: Sending | None = None) -> Response:
        """POST `body` (JSON) to base path + `path`; the whole exchange within `timeout` seconds. `sending` is told
        if it has to wait for a connection (paced, or the pool full), and when it is sent after that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = b"".join((
            b"POST ", (self.path + path).encode(), b" HTTP/1.1\r\n", self._head,
            b"Content-Length: ", str(len(body)).encode(), b"\r\n\r\n", body,
        ))
        conn = await self._acquire(loop, deadline, sending)
        fut = conn.send(loop, request, max(0.001, deadline - loop.time()), timeout)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.cancelled() or not fut.done():  # awaiting it, we cancelled it too: the answer may yet come
                conn.abandon()
            raise

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float,
                       sending: Sending | None = None) -> _Connection:
        told: Sending | None = None  # `sending`, once told that this request waits
        while True:
            self._close_stale(loop.time())
            conn = self._take_idle()
            if conn is None and len(self._open) + self._connecting < self._limit and self._may_connect(loop):
                conn = await self._connect(loop, deadline)
            if conn is not None:
                if told is not None:
                    told.sent()
                return conn
            if sending is not None and told is None:
                told = sending
                sending.waiting()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass our turn on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn, _ = self._idle.popitem()  # the most recently used: the least likely to have timed out
            if conn.transport is not None and not conn.transport.is_closing():
                return conn
            conn.close()
        return None

    def _may_connect(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Pacing: at most MAX_CONNECTING connects at once, and per second at most as many new connections as
        are open (at least CONNECT_RATE_MIN). Refused, the caller waits for a connection to come free, or for
        the pacing timer."""
        now = loop.time()
        while self._connects and self._connects[0] <= now - 1.0:
            self._connects.popleft()
        if self._connecting < MAX_CONNECTING and len(self._connects) < max(CONNECT_RATE_MIN, len(self._open)):
            self._connects.append(now)
            return True
        if self._connecting < MAX_CONNECTING and self._pacing is None:
            self._pacing = loop.call_at(self._connects[0] + 1.0, self._paced)
        return False

    def _unpace(self) -> None:
        if self._connects:
            self._connects.pop()

    def _paced(self) -> None:
        self._pacing = None
        for _ in range(MAX_CONNECTING - self._connecting):
            self._wake()

    def _close_stale(self, now: float) -> None:
        while self._idle:
            conn, since = next(iter(self._idle.items()))  # the longest idle
            if now - since < self._idle_close:
                return
            conn.close()  # leaves _idle and _open through _forget

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        self._connecting += 1
        try:
            budget = max(0.001, min(self._connect_timeout, deadline - loop.time()))
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self._ssl),
                    budget,
                )
            except TimeoutError as e:
                raise HttpTimeout(f"Could not connect to the upstream within {budget:g} seconds.") from e
            except OSError as e:
                self._unpace()  # refused: it holds nothing on the server, and retries must not wait for pacing
                raise HttpError(f"Could not connect to the upstream: {e.strerror or type(e).__name__}.") from e
        finally:
            self._connecting -= 1
            self._wake()
        conn: _Connection = proto
        if conn.transport is None:  # closed before we got to count it
            raise HttpError("The upstream closed the connection as it opened.")
        self._open.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        now = asyncio.get_running_loop().time()
        self._idle[conn] = now
        self._close_stale(now)
        self._wake()

    def _forget(self, conn: _Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            self._idle.pop(conn, None)
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        if self._pacing is not None:
            self._pacing.cancel()
            self._pacing = None
        for conn in list(self._open):
            conn.close()
        self._idle.clear()
