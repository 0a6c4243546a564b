"""The `batchgate` command. Its help text is the docs for each command."""

from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from batchgate.cli_keys import keys
from batchgate.cli_options import (
    configure_logging,
    one_line_errors,
    run_async,
    settings_from_flags,
    storage_options,
    store_options,
    worker_options,
)
from batchgate.cli_projects import projects
from batchgate.remote_batches import batches
from batchgate.remote_files import files
from batchgate.settings import Settings

log = logging.getLogger("batchgate")


@click.group()
@click.version_option(package_name="batchgate")
def main() -> None:
    """batchgate: a self-hosted, OpenAI-compatible Batch API."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1). [env BATCHGATE_HOST]")
@click.option("--port", type=int, help="Port to listen on (default 8000). [env BATCHGATE_PORT]")
@click.option("--worker/--no-worker", default=None, help="Run the worker in this process (default on).")
@worker_options
@storage_options
def serve(**flags: Any) -> None:
    """Run the API and the worker: the Files, Uploads and Batches endpoints under /v1, the dashboard at /ui."""
    from batchgate.api.app import create_app
    from batchgate.startup import check_backends, summary
    from batchgate.wiring.routes import build_router

    settings = settings_from_flags(**flags)
    configure_logging(settings)
    with one_line_errors():
        router = build_router(settings)  # a bad routing file fails here, before the port is bound
        has_keys = asyncio.run(check_backends(settings))
        app = create_app(settings)
    if not (settings.is_loopback() or has_keys):
        raise click.ClickException(
            f"refusing to listen on {settings.host} without API keys: anyone could use it. Create one with "
            f"`{_keys_create_command(settings)}`, or bind to 127.0.0.1."
        )
    log.info(summary(settings, router, serving=True))
    from batchgate.api.server import serve_app

    serve_app(app, settings.host, settings.port, settings.log_level)


def _keys_create_command(settings: Settings) -> str:
    """The command that puts a key where this server looks for keys (a database password shown masked)."""
    from batchgate.logs import redact_url

    words = ["batchgate", "keys", "create", "--project", "NAME"]
    if settings.database_url is not None:
        words += ["--database-url", redact_url(settings.database_url)]
    else:
        words += ["--data-dir", str(settings.data_dir.resolve())]
    return " ".join(shlex.quote(w) for w in words)


@main.command()
@worker_options
@storage_options
def worker(**flags: Any) -> None:
    """Run workers only (no HTTP): claim and execute batches from the shared database and storage.

    Start as many as you like, on as many machines as you like, next to `serve --no-worker` processes.
    SIGTERM or SIGINT stops claiming, releases held leases and exits 0."""
    from batchgate.startup import check_backends, summary
    from batchgate.wiring.routes import build_router
    from batchgate.worker_process import run_worker_process

    settings = settings_from_flags(**flags)
    configure_logging(settings)
    with one_line_errors():
        router = build_router(settings)
        asyncio.run(check_backends(settings))
    log.info(summary(settings, router, serving=False))
    run_async(run_worker_process(settings))


@main.command()
@store_options
def migrate(**flags: Any) -> None:
    """Apply pending schema migrations and exit (serve and worker also apply them at start-up)."""
    from batchgate.store import factory

    applied = run_async(factory.migrate(settings_from_flags(**flags)))
    if applied:
        click.echo("applied migrations: " + ", ".join(f"{v:04d}" for v in applied))
    else:
        click.echo("schema is up to date")


@main.command()
@click.argument("input_file", metavar="INPUT",
                type=click.Path(path_type=Path, exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", required=True, metavar="FILE",
              help="Where to write results; - for stdout (progress and messages always go to stderr).")
@click.option("--errors", metavar="FILE", help="Where to write failed requests (default: OUTPUT with "
              ".errors.jsonl); - for stdout. Required with -o -.")
@click.option("--endpoint", help="Batch endpoint (default: the url of the first line).")
@click.option("--upstream", help="Base URL (…/v1) of an OpenAI-compatible server. [env BATCHGATE_UPSTREAM]")
@click.option("--upstream-api-key", help="Bearer key for --upstream. [env BATCHGATE_UPSTREAM_API_KEY]")
@click.option("--config", type=click.Path(path_type=Path, exists=True, dir_okay=False), help="Routing TOML.")
@click.option("--max-concurrency", "upstream_concurrency", type=click.IntRange(min=1),
              help="Cap on requests in flight per upstream (default: adaptive). [env BATCHGATE_UPSTREAM_CONCURRENCY]")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Keep this run's state here (default: $XDG_STATE_HOME/batchgate/runs/KEY, which is "
              "~/.local/state/batchgate/runs/KEY when XDG_STATE_HOME is unset).")
@click.option("--keep-state", is_flag=True, help="Keep the state after the batch ends (default: removed once its "
              "results are written, so the same command later runs the batch afresh).")
@click.option("--fail-fast", is_flag=True, help="Stop with exit status 4 when every replica of an upstream is "
              "down (default: wait for it to answer again, spending no attempts).")
def run(input_file: Path, output: str, errors: str | None, endpoint: str | None, data_dir: Path | None,
        keep_state: bool, fail_fast: bool, **flags: Any) -> None:
    """Run one batch file to completion, like `vllm run-batch`: same validation and execution as the server.

    INPUT is a .jsonl file of requests, or - for stdin.

    Ctrl-C (SIGINT) or SIGTERM stops sending, writes the results recorded so far (succeeded lines to OUTPUT,
    failed ones to ERRORS), says how many lines did not run, and exits; a second Ctrl-C quits at once. Running
    the same command again resumes the batch: recorded results are kept and only requests that were in
    flight are sent again. A batch is known by its input's bytes, its endpoint and where requests go
    (--config's contents, else --upstream, else the local engine); its state lives in --data-dir, else in
    $XDG_STATE_HOME/batchgate/runs/KEY (~/.local/state/batchgate/runs/KEY), locked while a run uses it.

    No size limits apply here (OpenAI's 50,000 requests, 200 MB and 50,000 embedding inputs per batch, 512 MB
    per file) unless set with BATCHGATE_MAX_BATCH_REQUESTS, BATCHGATE_MAX_BATCH_FILE_BYTES,
    BATCHGATE_MAX_BATCH_EMBEDDING_INPUTS or BATCHGATE_MAX_UPLOAD_BYTES.

    When every replica of an upstream is down (connections refused or reset, 502/503/504), sending to it pauses
    and the run says what it waits for; no request spends an attempt until one answers again. --fail-fast stops
    instead, writing the results recorded so far (the same command resumes).

    \b
    Exit codes:
      0    completed, and at least one request succeeded (failed ones are in ERRORS)
      1    the batch failed validation or did not complete (expired), or results could not be written
      2    bad options, paths or routing file; nothing ran
      3    completed, but no request succeeded (all of them are in ERRORS)
      4    --fail-fast: an upstream was down; the results so far are written, run the same command to resume
      75   another `batchgate run` is running this batch
      130  stopped by SIGINT, 143 by SIGTERM: run the same command to resume
    """
    from batchgate.oneshot import run_file

    source = None if str(input_file) == "-" else input_file
    code = asyncio.run(run_file(source, output, errors, endpoint, data_dir, keep_state, flags, fail_fast))
    sys.exit(code)


main.add_command(keys)
main.add_command(projects)
main.add_command(batches)
main.add_command(files)
