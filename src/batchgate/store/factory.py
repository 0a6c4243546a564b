"""Choosing the Store adapter from settings: SQLite in the data directory unless a PostgreSQL URL is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchgate.errors import ConfigError
from batchgate.logs import redact_url
from batchgate.settings import Settings
from batchgate.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from batchgate.store.postgres import PostgresStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def make_store(settings: Settings) -> SQLiteStore | PostgresStore:
    url = settings.database_url
    if url is None:
        return SQLiteStore(settings.db_path)
    if url.startswith(POSTGRES_SCHEMES):
        try:
            from batchgate.store.postgres import PostgresStore
        except ImportError as e:  # asyncpg is the `postgres` extra
            raise ConfigError("a PostgreSQL database URL needs `pip install 'batchgate[postgres]'`") from e
        return PostgresStore(url, settings.database_pool_size)
    raise ConfigError(f"unsupported database URL {redact_url(url)!r}: expected postgresql://...")


async def migrate(settings: Settings) -> list[int]:
    """Apply pending migrations (opening a store does it) and return the versions applied now."""
    store = make_store(settings)
    await store.open()
    try:
        return store.applied_migrations
    finally:
        await store.close()

