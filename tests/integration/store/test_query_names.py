"""Both dialects name their SQL the same way: a query added to one adapter must be added to the other, unless
the module says it is a step only that dialect needs (its ONLY_HERE)."""

from __future__ import annotations

import inspect
from types import ModuleType

from batchgate.store.postgres import queries as postgres
from batchgate.store.sqlite import queries as sqlite


def names(module: ModuleType) -> set[str]:
    """The module's public queries: upper-case string constants and functions that build one."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_") and (
            (name.isupper() and isinstance(value, str))
            or (inspect.isfunction(value) and value.__module__ == module.__name__)
        )
    }


def test_both_dialects_define_the_same_query_names() -> None:
    shared_sqlite = names(sqlite) - sqlite.ONLY_HERE
    shared_postgres = names(postgres) - postgres.ONLY_HERE
    assert shared_sqlite - shared_postgres == set(), "queries only SQLite defines"
    assert shared_postgres - shared_sqlite == set(), "queries only PostgreSQL defines"


def test_dialect_only_steps_exist_and_are_not_shared() -> None:
    assert sqlite.ONLY_HERE <= names(sqlite)
    assert postgres.ONLY_HERE <= names(postgres)
    assert not sqlite.ONLY_HERE & names(postgres)
    assert not postgres.ONLY_HERE & names(sqlite)


def test_webhook_sql_is_named_in_both() -> None:
    for name in ("INSERT_ENDPOINT", "LIST_ENDPOINTS", "DELETE_ENDPOINT", "DISCARD_PENDING", "ENDPOINTS_OF_BATCH",
                 "INSERT_DELIVERIES", "RECORD_ATTEMPT", "INSERT_ATTEMPT", "DELIVERIES_OF_BATCH", "ATTEMPTS_OF_BATCH"):
        assert name in names(sqlite) and name in names(postgres)
