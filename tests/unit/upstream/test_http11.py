"""The upstream HTTP/1.1 client against a real socket server that answers with scripted bytes."""

from __future__ import annotations

import asyncio
import functools
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from batchgate.upstream.http11 import CONNECT_RATE_MIN, HttpError, HttpTimeout, Pool


def sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())  # type: ignore[arg-type]

    return run


Answer = Callable[[bytes], bytes | None]  # request bytes -> raw answer (None: close without answering)


class Server:
    def __init__(self, answer: Answer, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.open = 0
        self.max_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length:")), 0)
                req = head + await reader.readexactly(length)
                self.requests.append(req)
                out = self.answer(req)
                if out is None:
                    return
                if out == b"hang":
                    await reader.read()  # until the client gives up and closes
                    return
                writer.write(out)
                await writer.drain()
                if self.close_after:
                    return
        finally:
            self.open -= 1
            writer.close()


async def serve(server: Server) -> tuple[asyncio.Server, str]:
    s = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = s.sockets[0].getsockname()[1]
    return s, f"http://127.0.0.1:{port}/v1"


async def pool_for(server: Server, limit: int = 8, headers: dict[str, str] | None = None) -> AsyncIterator[Pool]:
    s, url = await serve(server)
    pool = Pool(url, headers or {"Content-Type": "application/json"}, limit, 5.0)
    pool.start()
    try:
        yield pool
    finally:
        pool.close()
        s.close()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@sync
async def test_keep_alive_reuses_one_connection_and_sends_the_request() -> None:
    server = Server(lambda req: ok(b'{"ok":true}', b"X-Request-Id: abc\r\nRetry-After: 2\r\n"))
    async for pool in pool_for(server, headers={"Content-Type": "application/json", "Authorization": "Bearer k"}):
        for _ in range(5):
            r = await pool.post("/chat/completions", b'{"a":1}', 5)
            assert (r.status, r.body) == (200, b'{"ok":true}')
            assert r.headers["x-request-id"] == "abc" and r.headers["retry-after"] == "2"
    assert server.connections == 1
    req = server.requests[0]
    assert req.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer k\r\n" in req and b"\r\nContent-Length: 7\r\n" in req
    assert req.endswith(b'\r\n\r\n{"a":1}')


@sync
async def test_chunked_answer() -> None:
    chunked = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    async for pool in pool_for(Server(lambda req: chunked)):
        r = await pool.post("/x", b"{}", 5)
        assert (r.status, r.body) == (500, b"hello world")
        assert (await pool.post("/x", b"{}", 5)).body == b"hello world"


@sync
async def test_answer_delimited_by_close() -> None:
    async for pool in pool_for(Server(lambda req: b"HTTP/1.1 200 OK\r\n\r\n{\"a\":1}", close_after=True)):
        r = await pool.post("/x", b"{}", 5)
        assert (r.status, r.body) == (200, b'{"a":1}')
        assert (await pool.post("/x", b"{}", 5)).body == b'{"a":1}'  # a new connection for the next one


@sync
async def test_gzip_answer_is_decoded() -> None:
    body = gzip.compress(b'{"big":"' + b"x" * 5000 + b'"}')
    server = Server(lambda req: ok(body, b"Content-Encoding: gzip\r\n"))
    async for pool in pool_for(server):
        r = await pool.post("/x", b"{}", 5)
        assert r.body.startswith(b'{"big":"xxx') and len(r.body) == 5010
    assert b"Accept-Encoding: gzip, deflate" in server.requests[0]


@sync
async def test_truncated_answer_is_an_error_not_a_short_body() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"partial\":"
    async for pool in pool_for(Server(lambda req: cut, close_after=True)):
        with pytest.raises(HttpError, match="closed the connection"):
            await pool.post("/x", b"{}", 5)


@sync
async def test_dropped_connection_is_an_error_and_is_not_resent() -> None:
    server = Server(lambda req: None)
    async for pool in pool_for(server):
        with pytest.raises(HttpError):
            await pool.post("/x", b"{}", 5)
    assert len(server.requests) == 1


@sync
async def test_garbage_is_an_error() -> None:
    async for pool in pool_for(Server(lambda req: b"SSH-2.0-OpenSSH\r\n\r\n")):
        with pytest.raises(HttpError, match="not valid HTTP"):
            await pool.post("/x", b"{}", 5)


@sync
async def test_timeout_aborts_the_connection() -> None:
    server = Server(lambda req: b"hang")
    async for pool in pool_for(server):
        with pytest.raises(HttpTimeout, match=r"within 0\.2 seconds"):
            await pool.post("/x", b"{}", 0.2)
        await asyncio.sleep(0.05)
        assert server.open == 0  # the hanging connection was closed, not kept


@sync
async def test_refused_connection() -> None:
    s, url = await serve(Server(lambda req: ok(b"{}")))
    s.close()
    await s.wait_closed()
    pool = Pool(url, {}, 4, 5.0)
    pool.start()
    with pytest.raises(HttpError, match="Could not connect"):
        await pool.post("/x", b"{}", 5)


@sync
async def test_cancelled_request_does_not_leave_its_connection_in_the_pool() -> None:
    server = Server(lambda req: b"hang")
    async for pool in pool_for(server):
        t = asyncio.create_task(pool.post("/x", b"{}", 30))
        await asyncio.sleep(0.1)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        await asyncio.sleep(0.05)
        assert server.open == 0


@sync
async def test_connection_limit_is_kept() -> None:
    server = Server(lambda req: ok(b"{}"))
    async for pool in pool_for(server, limit=3):
        rs = await asyncio.gather(*(pool.post("/x", b"{}", 5) for _ in range(50)))
        assert all(r.status == 200 for r in rs)
    assert server.max_open <= 3 and len(server.requests) == 50


class Told:
    """What a request's `waiting` hears: each call, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def waiting(self) -> None:
        self.calls.append("waiting")

    def sent(self) -> None:
        self.calls.append("sent")


@sync
async def test_a_request_that_waits_for_a_connection_is_told_when_it_waits_and_when_it_is_sent() -> None:
    """Our own queueing, never the engine's: one connection, three requests at once. The first goes out at once
    and hears nothing; the others wait for it, then are sent, and hear both, once each."""
    server = Server(lambda req: ok(b"{}"))
    told = [Told() for _ in range(3)]
    async for pool in pool_for(server, limit=1):
        rs = await asyncio.gather(*(pool.post("/x", b"{}", 5, t) for t in told))
        assert all(r.status == 200 for r in rs)
    assert [t.calls for t in told] == [[], ["waiting", "sent"], ["waiting", "sent"]]


@sync
async def test_https_verifies_the_server_and_talks_tls() -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    server = Server(lambda req: ok(b'{"tls":true}'))
    s = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = s.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    try:
        pool = Pool(f"https://127.0.0.1:{port}/v1", {}, 4, 5.0, tls=trusting)
        pool.start()
        assert (await pool.post("/x", b"{}", 5)).body == b'{"tls":true}'
        pool.close()
        stranger = Pool(f"https://127.0.0.1:{port}/v1", {}, 4, 5.0)  # the system CAs don't know this server
        stranger.start()
        with pytest.raises(HttpError, match="Could not connect"):
            await stranger.post("/x", b"{}", 5)
    finally:
        s.close()


@sync
async def test_connections_the_server_closes_give_their_place_back() -> None:
    server = Server(lambda req: ok(b"{}"), close_after=True)  # keep-alive by its headers, closed anyway
    async for pool in pool_for(server, limit=1):
        for _ in range(5):
            await asyncio.sleep(0.02)  # the close arrives while the connection sits idle
            r = await asyncio.wait_for(pool.post("/x", b"{}", 5), 5)
            assert r.status == 200
    assert server.connections == 5


@sync
async def test_new_connections_are_paced() -> None:
    """Forty requests at once against a server that holds every answer: the pool opens CONNECT_RATE_MIN
    connections in the first second, not forty, and the rest go out over them once answers come."""
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    class Holding(Server):
        async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await release.wait()
            await super().handle(reader, writer)

    server = Holding(lambda req: ok(b"{}"))
    accepted: list[float] = []
    handle = server.handle
    first_wave = asyncio.Event()

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(loop.time())
        if len(accepted) >= CONNECT_RATE_MIN:
            first_wave.set()
        await handle(reader, writer)

    server.handle = counting  # type: ignore[method-assign]
    async for pool in pool_for(server, limit=100):
        start = loop.time()
        posts = asyncio.gather(*(pool.post("/x", b"{}", 30) for _ in range(40)))
        await first_wave.wait()
        await asyncio.sleep(0.2)
        assert len(accepted) == CONNECT_RATE_MIN or loop.time() - start > 1.0
        release.set()
        rs = await posts
        assert all(r.status == 200 for r in rs)
    assert len(server.requests) == 40 and len(accepted) < 40


@sync
async def test_connections_idle_too_long_are_closed() -> None:
    server = Server(lambda req: ok(b"{}"))
    s, url = await serve(server)
    pool = Pool(url, {}, 4, 5.0, idle_close=0.05)
    pool.start()
    try:
        await pool.post("/x", b"{}", 5)
        await asyncio.sleep(0.2)  # idle past idle_close: closed, not reused
        await pool.post("/x", b"{}", 5)
        await pool.post("/x", b"{}", 5)  # this one reuses the second connection
    finally:
        pool.close()
        s.close()
    assert server.connections == 2 and len(server.requests) == 3
