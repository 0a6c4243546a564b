"""A DNS resolver that only answers with globally routable addresses, for webhook deliveries when
`webhook_allow_private` is off: a public name that resolves to 127.0.0.1 or 10.x is refused at connect time,
so the check cannot be dodged by DNS (aiohttp never asks the resolver for literal addresses; those are checked
against the URL before sending)."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class PublicResolver(AbstractResolver):
    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if ipaddress.ip_address(r["host"]).is_global]
        if not public:
            raise OSError(f"{host} resolves only to private or loopback addresses, which webhooks may not use")
        return public

    async def close(self) -> None:
        await self._inner.close()
