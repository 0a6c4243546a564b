"""API keys for the in-process app tests: made on the app's own store before the app starts."""

from __future__ import annotations

import asyncio

from batchgate.services.auth import AuthService
from batchgate.settings import Settings
from batchgate.store.factory import make_store


def project_keys(settings: Settings, *projects: str) -> list[str]:
    """One new key for each project, in order."""

    async def go() -> list[str]:
        store = make_store(settings)
        await store.open()
        try:
            auth = AuthService(store)
            return [await auth.create_key(p) for p in projects]
        finally:
            await store.close()

    return asyncio.run(go())
