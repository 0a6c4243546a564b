"""The PostgreSQL adapter: named queries (queries.py) sequenced by PostgresStore (store.py)."""

from batchgate.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
