"""Settings choose the adapters: SQLite and the data directory by default, PostgreSQL and S3 by URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgate.blobs.factory import make_blobs
from batchgate.blobs.local import LocalBlobStore
from batchgate.blobs.s3 import S3BlobStore, S3Location
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.store.factory import make_store
from batchgate.store.postgres import PostgresStore
from batchgate.store.sqlite import SQLiteStore


def test_defaults_are_sqlite_and_local_disk(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert isinstance(make_store(s), SQLiteStore)
    assert isinstance(make_blobs(s), LocalBlobStore)


def test_urls_select_postgres_and_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHGATE_DATABASE_URL", "postgresql://u@db.internal:5432/bg")
    monkeypatch.setenv("BATCHGATE_STORAGE_URL", "s3://bucket/some/prefix/")
    s = Settings(data_dir=tmp_path)
    assert isinstance(make_store(s), PostgresStore)
    assert isinstance(make_blobs(s), S3BlobStore)
    assert isinstance(make_store(Settings(database_url="postgres://u@h/db")), PostgresStore)


def test_s3_locations() -> None:
    assert S3Location.parse("s3://bucket") == S3Location("bucket", "")
    assert S3Location.parse("s3://bucket/a/b/") == S3Location("bucket", "a/b/")
    with pytest.raises(ValueError):
        S3Location.parse("s3:///nobucket")


@pytest.mark.parametrize(
    "field,url", [("database_url", "mysql://u:secret@h/db"), ("storage_url", "gs://b/p"), ("storage_url", "s3://")]
)
def test_unsupported_urls_are_refused(field: str, url: str) -> None:
    s = Settings(**{field: url})
    with pytest.raises(ConfigError) as e:
        make_store(s) if field == "database_url" else make_blobs(s)
    assert "secret" not in str(e.value)
