"""Choosing the BlobStore from settings: the data directory unless an s3:// storage URL is given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchgate.blobs.local import LocalBlobStore
from batchgate.errors import ConfigError
from batchgate.settings import Settings

if TYPE_CHECKING:
    from batchgate.blobs.s3 import S3BlobStore


def make_blobs(settings: Settings) -> LocalBlobStore | S3BlobStore:
    url = settings.storage_url
    if url is None:
        return LocalBlobStore(settings.blob_dir)
    if not url.startswith("s3://"):
        raise ConfigError(f"unsupported storage URL {url!r}: expected s3://bucket/prefix")
    try:
        from batchgate.blobs.s3 import S3BlobStore, S3Location, S3Options
    except ImportError as e:  # aiobotocore is the `s3` extra
        raise ConfigError("an s3:// storage URL needs `pip install 'batchgate[s3]'`") from e
    try:
        location = S3Location.parse(url)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return S3BlobStore(location, S3Options(
        endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
        access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key,
        part_size=settings.s3_part_size,
    ))
