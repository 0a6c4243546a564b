"""The SQLite adapter: named queries (queries.py) sequenced by SQLiteStore (store.py)."""

from batchgate.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
