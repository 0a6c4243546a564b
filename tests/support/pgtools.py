"""The real PostgreSQL server for tests: one migrated template database, one cheap clone per test.

The server is the one on 127.0.0.1:5432 (trust auth) that CI starts; TEST_POSTGRES_URL overrides it.
Tests that need it skip, saying why, only when no server answers.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from batchgate.store.base import Store
from batchgate.store.postgres import PostgresStore
from batchgate.store.sqlite import SQLiteStore

CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/postgres",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


@cache
def admin_url() -> str | None:
    """The first URL that connects, or None when no PostgreSQL server answers."""
    wanted = os.environ.get("TEST_POSTGRES_URL")
    for url in (wanted,) if wanted else CANDIDATES:
        if asyncio.run(_answers(url)):
            return url
    return None


async def _admin(sql: str) -> None:
    url = admin_url()
    assert url is not None
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PgDatabases:
    """A template migrated once per session; `clone()` gives each test its own copy in ~0.1 s."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.prefix = f"bgtest_{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_tpl"
        self._n = itertools.count()
        self.created: list[str] = []

    def url(self, name: str) -> str:
        return with_database(self.admin, name)

    def create_template(self) -> None:
        asyncio.run(_admin(f'CREATE DATABASE "{self.template}"'))

        async def migrate() -> None:
            store = PostgresStore(self.url(self.template), pool_size=1)
            await store.open()
            await store.close()

        asyncio.run(migrate())

    def clone(self) -> str:
        name = f"{self.prefix}_{next(self._n)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return self.url(name)

    def empty(self) -> str:
        """A database without any schema (for migration tests)."""
        name = f"{self.prefix}_{next(self._n)}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in [*self.created, self.template]:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()


NO_SERVER = "no PostgreSQL server answers on 127.0.0.1:5432 (CI starts one; set TEST_POSTGRES_URL to use another)"


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """Import into a conftest.py to use: a migrated template for the session."""
    admin = admin_url()
    if admin is None:
        pytest.skip(NO_SERVER)
    dbs = PgDatabases(admin)
    dbs.create_template()
    yield dbs
    dbs.drop_all()


@pytest.fixture
def pg_url(pg_databases: PgDatabases) -> Iterator[str]:
    """A database of its own for one test, already migrated."""
    url = pg_databases.clone()
    yield url
    pg_databases.drop(url)


Body = Callable[[Any], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
def run_with_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Body], None]:
    """Run an async test body against each Store adapter: real SQLite, and a fresh PostgreSQL database."""

    def run(body: Body) -> None:
        store: Store
        if request.param == "postgres":
            store = PostgresStore(request.getfixturevalue("pg_url"), pool_size=4)
        else:
            store = SQLiteStore(tmp_path / "db.sqlite3")

        async def go() -> None:
            await store.open()
            try:
                await body(store)
            finally:
                await store.close()

        asyncio.run(go())

    return run
