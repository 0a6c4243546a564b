"""PostgreSQL for the in-process app tests: a migrated template per session, a fresh clone per test."""

from pgtools import pg_databases, pg_url

__all__ = ["pg_databases", "pg_url"]
