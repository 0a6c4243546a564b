"""Versioned plain-SQL migrations, one folder per database: `migrations/<dialect>/NNNN_name.sql`.

Each adapter applies the pending ones at open() (and `batchgate migrate` does only that), recording each in
`schema_migrations`. Adapters serialize concurrent starters themselves (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an advisory lock), so many processes may start against one database at the same time.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_SQLITE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
)
CREATE_POSTGRES_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
)
APPLIED = "SELECT version FROM schema_migrations ORDER BY version"
SQLITE_IS_APPLIED = "SELECT 1 FROM schema_migrations WHERE version = ?"
SQLITE_RECORD = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, strftime('%s'))"
POSTGRES_LOCK = "SELECT pg_advisory_xact_lock($1)"
POSTGRES_RECORD = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)"
# Any constant works; it only has to be the same in every batchgate process.
POSTGRES_LOCK_KEY = 0x6261746368676174  # "batchgat"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: Dialect) -> list[Migration]:
    """Every migration of `dialect`, in version order."""
    folder = resources.files("batchgate.store").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations must be numbered 0001, 0002, ... without gaps: {versions}")
    return found


def current_schema(dialect: Dialect) -> str:
    """The whole current schema as one script (schema/<dialect>.sql); the migrations must produce the same."""
    return resources.files("batchgate.store").joinpath("schema", f"{dialect}.sql").read_text()


def sqlite_statements(script: str) -> list[str]:
    """Split a script into statements at the semicolons SQLite itself would end them on."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                out.append(pending.strip())
            pending = ""
    leftover = [ln for ln in pending.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"unterminated SQL statement: {leftover[0][:80]!r}")
    return out
