"""The `batchgate` command. Its help text is the docs for each command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError

from batchgate.errors import BatchgateError, ConfigError
from batchgate.remote_cli import batches, files
from batchgate.settings import Settings

if TYPE_CHECKING:
    from batchgate.services.auth import AuthService

T = TypeVar("T")


def _settings(**flags: Any) -> Settings:
    """CLI flags win over BATCHGATE_* environment variables, which win over defaults."""
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as e:
        raise click.UsageError(str(e)) from None


def _logging(settings: Settings) -> None:
    from batchgate import logs

    logs.configure(settings.log_level, settings.log_format)


def _with_auth(settings: Settings, use: Callable[[AuthService], Awaitable[T]]) -> T:
    """Open the store, run `use` on an AuthService over it, close the store (commands that need no server)."""
    from batchgate.services.auth import AuthService
    from batchgate.store.factory import make_store

    async def go() -> T:
        store = make_store(settings)
        await store.open()
        try:
            return await use(AuthService(store))
        finally:
            await store.close()

    return asyncio.run(go())


def _storage_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Where metadata and file bytes live: shared by every command that opens them."""
    fn = click.option("--s3-endpoint-url", help="S3 API endpoint for non-AWS storage (MinIO, Ceph, ...). "
                      "[env BATCHGATE_S3_ENDPOINT_URL]")(fn)
    fn = click.option("--storage-url", help="s3://bucket/prefix for file bytes (default: the data directory). "
                      "[env BATCHGATE_STORAGE_URL]")(fn)
    fn = click.option("--database-url", help="postgresql://... for metadata (default: SQLite in the data "
                      "directory). [env BATCHGATE_DATABASE_URL]")(fn)
    return fn


def _worker_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Where data lives, where requests go, how logs look: shared by `serve` and `worker`."""
    fn = click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines as text or JSON "
                      "objects (default text). [env BATCHGATE_LOG_FORMAT]")(fn)
    fn = click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                      help="TOML file routing models to upstreams. [env BATCHGATE_CONFIG]")(fn)
    fn = click.option("--upstream-api-key", help="Bearer key for --upstream. [env BATCHGATE_UPSTREAM_API_KEY]")(fn)
    fn = click.option("--upstream", help="Base URL (…/v1) of an OpenAI-compatible server for every model. "
                      "[env BATCHGATE_UPSTREAM]")(fn)
    fn = click.option("--data-dir", type=click.Path(path_type=Path),
                      help="Database and files. [env BATCHGATE_DATA_DIR]")(fn)
    return fn


@click.group()
@click.version_option(package_name="batchgate")
def main() -> None:
    """batchgate: a self-hosted, OpenAI-compatible Batch API."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1). [env BATCHGATE_HOST]")
@click.option("--port", type=int, help="Port to listen on (default 8000). [env BATCHGATE_PORT]")
@click.option("--worker/--no-worker", default=None, help="Run the worker in this process (default on).")
@_worker_options
@_storage_options
def serve(**flags: Any) -> None:
    """Run the API and the worker: the Files, Uploads and Batches endpoints under /v1."""
    from batchgate.api.app import create_app
    from batchgate.store.factory import make_store

    settings = _settings(**flags)
    _logging(settings)

    try:
        has_keys = settings.is_loopback() or _with_auth(settings, lambda auth: auth.keys_exist())
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    if not has_keys:
        raise click.ClickException(
            f"refusing to listen on {settings.host} without API keys: anyone could use it. "
            "Create one with `batchgate keys create --project NAME`, or bind to 127.0.0.1."
        )
    try:
        app = create_app(settings)
        from batchgate.upstream.router import build_router

        build_router(settings)  # fail fast on a bad config, before binding the port
        from batchgate.blobs.factory import make_blobs

        make_store(settings)  # likewise for bad database and storage URLs
        make_blobs(settings)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    from batchgate.api.server import serve_app

    serve_app(app, settings.host, settings.port, settings.log_level)


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--project", required=True, help="Project the key belongs to; it sees only this project's objects.")
@click.option("--admin", is_flag=True, help="An admin key sees every project's objects.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory. [env BATCHGATE_DATA_DIR]")
@click.option("--database-url", help="postgresql://... (default: SQLite in the data directory). "
              "[env BATCHGATE_DATABASE_URL]")
def keys_create(project: str, admin: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Create an API key and print it (only its hash is stored: it cannot be shown again)."""

    settings = _settings(data_dir=data_dir, database_url=database_url)

    try:
        key = _with_auth(settings, lambda auth: auth.create_key(project, admin))
    except BatchgateError as e:
        raise click.ClickException(e.message) from None
    click.echo(f"Created {'an admin' if admin else 'a'} key for project {project!r}. Store it now:", err=True)
    click.echo(key)


@main.command()
@_worker_options
@_storage_options
def worker(**flags: Any) -> None:
    """Run workers only (no HTTP): claim and execute batches from the shared database and storage.

    Start as many as you like, on as many machines as you like, next to `serve --no-worker` processes.
    SIGTERM or SIGINT stops claiming, releases held leases and exits 0."""
    from batchgate.worker_process import run_worker_process

    settings = _settings(**flags)
    _logging(settings)
    try:
        asyncio.run(run_worker_process(settings))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Data directory. [env BATCHGATE_DATA_DIR]")
@click.option("--database-url", help="postgresql://... (default: SQLite in the data directory). "
              "[env BATCHGATE_DATABASE_URL]")
def migrate(**flags: Any) -> None:
    """Apply pending schema migrations and exit (serve and worker also apply them at start-up)."""
    from batchgate.store import factory

    settings = _settings(**flags)
    try:
        applied = asyncio.run(factory.migrate(settings))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    if applied:
        click.echo("applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        click.echo("schema is up to date")


@main.command()
@click.argument("input_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Where to write results.")
@click.option("--errors", type=click.Path(path_type=Path), help="Where to write failed requests "
              "(default: OUTPUT with .errors.jsonl).")
@click.option("--endpoint", help="Batch endpoint (default: the url of the first line).")
@click.option("--upstream", help="Base URL (…/v1) of an OpenAI-compatible server. [env BATCHGATE_UPSTREAM]")
@click.option("--upstream-api-key", help="Bearer key for --upstream. [env BATCHGATE_UPSTREAM_API_KEY]")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="Routing TOML.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Working data directory (default: a temp dir).")
def run(input_file: Path, output: Path, errors: Path | None, endpoint: str | None, **flags: Any) -> None:
    """Run one batch file to completion, like `vllm run-batch`: same validation and execution as the server.

    No size limits apply here (OpenAI's 50,000 requests, 200 MB and 50,000 embedding inputs per batch, 512 MB
    per file) unless set with BATCHGATE_MAX_BATCH_REQUESTS, BATCHGATE_MAX_BATCH_FILE_BYTES,
    BATCHGATE_MAX_BATCH_EMBEDDING_INPUTS or BATCHGATE_MAX_UPLOAD_BYTES."""
    from batchgate.oneshot import run_file

    code = asyncio.run(run_file(input_file, output, errors, endpoint, flags))
    sys.exit(code)


main.add_command(batches)
main.add_command(files)
