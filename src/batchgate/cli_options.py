"""What the server-side commands share: flags to Settings, the flag groups, and one line instead of a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from batchgate.errors import BatchgateError, ConfigError
from batchgate.settings import Settings

T = TypeVar("T")
Command = Callable[..., None]


def settings_from_flags(**flags: Any) -> Settings:
    """CLI flags win over BATCHGATE_* environment variables, which win over defaults."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as e:
        raise click.UsageError(str(e)) from None


def configure_logging(settings: Settings) -> None:
    from batchgate import logs

    logs.configure(settings.log_level, settings.log_format)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A bad setting, an unreachable database or bucket, a refused operation: `Error: <message>`, exit 1."""
    try:
        yield
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    except BatchgateError as e:
        raise click.ClickException(e.message) from None


def run_async(work: Coroutine[Any, Any, T]) -> T:
    with one_line_errors():
        return asyncio.run(work)


def store_options(fn: Command) -> Command:
    """Where metadata lives: for the commands that open only the store (keys, migrate)."""
    fn = click.option("--database-url", help="postgresql://... (default: SQLite in the data directory). "
                      "[env BATCHGATE_DATABASE_URL]")(fn)
    fn = click.option("--data-dir", type=click.Path(path_type=Path),
                      help="Data directory. [env BATCHGATE_DATA_DIR]")(fn)
    return fn


def storage_options(fn: Command) -> Command:
    """Where metadata and file bytes live: shared by every command that opens them."""
    fn = click.option("--s3-endpoint-url", help="S3 API endpoint for non-AWS storage (MinIO, Ceph, ...). "
                      "[env BATCHGATE_S3_ENDPOINT_URL]")(fn)
    fn = click.option("--storage-url", help="s3://bucket/prefix for file bytes (default: the data directory). "
                      "[env BATCHGATE_STORAGE_URL]")(fn)
    fn = click.option("--database-url", help="postgresql://... for metadata (default: SQLite in the data "
                      "directory). [env BATCHGATE_DATABASE_URL]")(fn)
    return fn


def worker_options(fn: Command) -> Command:
    """Where data lives, where requests go, how logs look: shared by `serve` and `worker`."""
    fn = click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines as text or JSON "
                      "objects (default text). [env BATCHGATE_LOG_FORMAT]")(fn)
    fn = click.option("--max-concurrency", "upstream_concurrency", type=click.IntRange(min=1),
                      help="Most requests in flight per upstream (a routing file's max_concurrency wins). "
                      "Default: adaptive, 8 up to 4096. [env BATCHGATE_UPSTREAM_CONCURRENCY]")(fn)
    fn = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                      help="TOML file routing models to upstreams. [env BATCHGATE_CONFIG]")(fn)
    fn = click.option("--upstream-api-key", help="Bearer key for --upstream. [env BATCHGATE_UPSTREAM_API_KEY]")(fn)
    fn = click.option("--upstream", help="Base URL (…/v1) of an OpenAI-compatible server for every model. "
                      "[env BATCHGATE_UPSTREAM]")(fn)
    fn = click.option("--data-dir", type=click.Path(path_type=Path),
                      help="Database and files. [env BATCHGATE_DATA_DIR]")(fn)
    return fn
