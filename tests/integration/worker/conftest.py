"""PostgreSQL for the worker's store-backed tests: a migrated template per session, a fresh clone per test."""

from pgtools import pg_databases, pg_url, run_with_store

__all__ = ["pg_databases", "pg_url", "run_with_store"]
