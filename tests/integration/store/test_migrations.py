"""Migrations: applying every migration gives exactly the schema in store/schema/<db>.sql, on both databases."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
from harness import run_cli
from pgtools import PgDatabases

from batchgate.store import migrate
from batchgate.store.postgres import PostgresStore
from batchgate.store.sqlite import SQLiteStore

Schema = dict[str, Any]


ALL_SQLITE = [m.version for m in migrate.migrations("sqlite")]
ALL_POSTGRES = [m.version for m in migrate.migrations("postgres")]


# -- describing a schema, independent of how its DDL was spelled ----------------------------------------------
def describe_sqlite(path: Path) -> Schema:
    db = sqlite3.connect(path)
    try:
        out: Schema = {}
        tables = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != 'schema_migrations' ORDER BY name"
        ).fetchall()
        for name, sql in tables:
            flat = " ".join(sql.upper().split())
            indexes = {}
            for idx in db.execute(f"PRAGMA index_list({name})").fetchall():
                cols = db.execute(f"PRAGMA index_xinfo({idx[1]})").fetchall()
                indexes[idx[1] if not idx[1].startswith("sqlite_autoindex") else f"auto:{idx[3]}"] = (
                    idx[2], idx[3], idx[4], [c[1:] for c in cols])
            out[name] = {
                "columns": db.execute(f"PRAGMA table_xinfo({name})").fetchall(),
                "indexes": dict(sorted(indexes.items())),
                "foreign_keys": db.execute(f"PRAGMA foreign_key_list({name})").fetchall(),
                "without_rowid": flat.endswith("WITHOUT ROWID"),
                "autoincrement": "AUTOINCREMENT" in flat,
            }
        return out
    finally:
        db.close()


async def describe_postgres(url: str) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default, "
            "is_identity, identity_generation FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY 1, 3"
        )
        indexes = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migrations' ORDER BY 1, 2"
        )
        constraints = await conn.fetch(
            "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'schema_migrations' "
            "ORDER BY 1, 2"
        )
        return {"columns": [tuple(r) for r in columns], "indexes": [tuple(r) for r in indexes],
                "constraints": [tuple(r) for r in constraints]}
    finally:
        await conn.close()


# -- SQLite -----------------------------------------------------------------------------------------------------
def test_sqlite_migrations_produce_the_current_schema(tmp_path: Path) -> None:
    async def migrate_db() -> list[int]:
        store = SQLiteStore(tmp_path / "migrated.sqlite3")
        await store.open()
        await store.close()
        return store.applied_migrations

    assert asyncio.run(migrate_db()) == [m.version for m in migrate.migrations("sqlite")]
    fresh = sqlite3.connect(tmp_path / "fresh.sqlite3")
    fresh.executescript(migrate.current_schema("sqlite"))
    fresh.close()
    migrated = describe_sqlite(tmp_path / "migrated.sqlite3")
    assert migrated == describe_sqlite(tmp_path / "fresh.sqlite3")
    assert set(migrated) == {"api_keys", "projects", "files", "uploads", "upload_parts", "batches", "chunks", "results",
                             "webhook_endpoints", "webhook_deliveries", "webhook_attempts", "idempotency_keys"}


def test_sqlite_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)  # what batchgate 0.1 left behind: the schema, no schema_migrations
    old.executescript(migrate.migrations("sqlite")[0].sql)
    old.execute("INSERT INTO api_keys VALUES ('k', 'p', 'h', 0, 1)")
    old.commit()
    old.close()

    async def reopen() -> tuple[list[int], bool]:
        store = SQLiteStore(path)
        await store.open()
        try:
            return store.applied_migrations, await store.has_keys()
        finally:
            await store.close()

    assert asyncio.run(reopen()) == (ALL_SQLITE, True)
    assert asyncio.run(reopen()) == ([], True)  # nothing left to apply the second time


def test_migrate_command_on_sqlite(tmp_path: Path) -> None:
    first = run_cli(["migrate", "--data-dir", str(tmp_path)])
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied migrations: " + ", ".join(f"{v:04d}" for v in ALL_SQLITE)
    again = run_cli(["migrate", "--data-dir", str(tmp_path)])
    assert again.returncode == 0 and again.stdout.strip() == "schema is up to date", again.stderr


# -- PostgreSQL -------------------------------------------------------------------------------------------------
def test_postgres_migrations_produce_the_current_schema(pg_databases: PgDatabases) -> None:
    migrated_url, fresh_url = pg_databases.empty(), pg_databases.empty()

    async def go() -> tuple[Schema, Schema, list[int]]:
        store = PostgresStore(migrated_url, pool_size=1)
        await store.open()
        await store.close()
        conn = await asyncpg.connect(fresh_url)
        await conn.execute(migrate.current_schema("postgres"))
        await conn.close()
        return await describe_postgres(migrated_url), await describe_postgres(fresh_url), store.applied_migrations

    migrated, fresh, applied = asyncio.run(go())
    assert applied == [m.version for m in migrate.migrations("postgres")]
    assert migrated == fresh
    assert {c[0] for c in migrated["columns"]} == {
        "api_keys", "projects", "files", "uploads", "upload_parts", "batches", "chunks", "results",
        "webhook_endpoints", "webhook_deliveries", "webhook_attempts", "idempotency_keys"}


def test_postgres_concurrent_starters_migrate_once(pg_databases: PgDatabases) -> None:
    url = pg_databases.empty()

    async def go() -> list[list[int]]:
        stores = [PostgresStore(url, pool_size=1) for _ in range(4)]
        await asyncio.gather(*(s.open() for s in stores))
        for s in stores:
            await s.close()
        return sorted((s.applied_migrations for s in stores), key=len)

    assert asyncio.run(go()) == [[], [], [], ALL_POSTGRES]


def test_migrate_command_on_postgres(pg_databases: PgDatabases) -> None:
    url = pg_databases.empty()
    first = run_cli(["migrate", "--database-url", url])
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied migrations: " + ", ".join(f"{v:04d}" for v in ALL_POSTGRES)
    again = run_cli(["migrate"], env={"BATCHGATE_DATABASE_URL": url})
    assert again.returncode == 0 and again.stdout.strip() == "schema is up to date", again.stderr
