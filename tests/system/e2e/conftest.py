"""PostgreSQL for the end-to-end tests that run batchgate on it: a migrated template, a clone per test."""

from pgtools import pg_databases, pg_url

__all__ = ["pg_databases", "pg_url"]
