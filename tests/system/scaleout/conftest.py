"""PostgreSQL for the multi-process tests (the S3 server is started by the tests themselves)."""

from pgtools import pg_databases, pg_url

__all__ = ["pg_databases", "pg_url"]
