"""Is a replica that was taken out answering again? One `GET {base}/models` on a connection of its own (not the
request pool's, whose pacing is for requests), closed after the status line: the cheapest thing every
OpenAI-compatible server answers. Any HTTP answer but 502/503/504 counts: a 401 or 404 still proves the server is
there, while a proxy's 502 in front of a restarting engine does not."""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

DOWN_STATUS = frozenset({502, 503, 504})


async def answers(base_url: str, headers: dict[str, str], timeout: float = 5.0) -> bool:
    """Whether `base_url` answers `GET {base}/models` within `timeout` seconds."""
    u = urlsplit(base_url)
    tls = u.scheme == "https"
    host = u.hostname or "localhost"
    port = u.port or (443 if tls else 80)
    lines = [f"GET {u.path.rstrip('/')}/models HTTP/1.1", f"Host: {u.netloc}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() in ("authorization", "user-agent")]
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl.create_default_context() if tls else None)
            try:
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError, ssl.SSLError):
        return False
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False
    return int(parts[1]) not in DOWN_STATUS
