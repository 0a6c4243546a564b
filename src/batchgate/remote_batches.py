"""`batchgate batches list|get|create|submit|cancel|download|tail|pause|resume|retry`: a running server's Batch API
from the terminal (tail, pause, resume and retry are batchgate's extensions, called with the SDK's `client.get` and
`client.post`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchgate.cli_table import Column, print_table
from batchgate.remote_cli import client_options, echo_json, sdk_client, when
from batchgate.remote_files import save, upload
from batchgate.remote_tail import batches_tail
from batchgate.remote_wait import wait_for

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch

ESTIMATE = "estimated_completion_at"  # batchgate's extension field: when the scheduler expects the batch done
AT_RISK = "at_risk_since"  # extension field: since when the scheduler serves the batch first, at risk of its window
PAUSE_FIELDS = ("paused", "paused_at")  # extension fields, shown only while the batch is paused
WINDOW_HELP = "24h (OpenAI's only value), or any whole number of hours or days from 1h to 7d."
LIST_COLUMNS = [Column("id"), Column("status", rank=1), Column("endpoint", rank=5, cut=True),
                Column("model", rank=4, cut=True), Column("counts", rank=2), Column("created", rank=3)]


def _counts(b: Batch) -> str:
    c = b.request_counts
    return f"{c.completed}/{c.failed}/{c.total}" if c is not None else ""


def _status(b: Batch) -> str:
    """The status, and what the server's extension fields add to it: paused, or at risk of missing its window."""
    return b.status + (" (paused)" if paused(b) else "") + (" (at risk)" if at_risk_since(b) is not None else "")


def _print_batch(b: Batch, as_json: bool) -> None:
    if as_json:
        echo_json(b.model_dump(mode="json"))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=b.id)
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    for name, value in b.model_dump(mode="json").items():
        if name in (ESTIMATE, AT_RISK) or (name in PAUSE_FIELDS and not value):
            continue
        if value is None or value == {}:
            continue
        shown = when(value) if name.endswith("_at") and isinstance(value, int) else value
        table.add_row(name, shown if isinstance(shown, str) else json.dumps(shown))
        if name == "request_counts" and b.status == "in_progress" and not paused(b):
            table.add_row(ESTIMATE, estimate(b, time.time()))
            if (since := at_risk_since(b)) is not None:
                table.add_row(AT_RISK, f"{when(since)}: at risk of missing its window, it goes first")
    Console().print(table)


def paused(b: Batch) -> bool:
    """Whether the server says the batch is paused (the extension field `paused`)."""
    return (b.model_extra or {}).get("paused") is True


def at_risk_since(b: Batch) -> int | None:
    """Since when the server has served the batch first, at risk of missing its window (the extension field)."""
    since = (b.model_extra or {}).get(AT_RISK)
    return since if isinstance(since, int) else None


def estimate(b: Batch, now: float) -> str:
    """The server's estimated completion (extension field), with the time left; why there is none yet."""
    at = (b.model_extra or {}).get(ESTIMATE)
    if not isinstance(at, int):
        return "not yet: the scheduler estimates a batch once it has measured its rate"
    left = at - now
    return f"{when(at)} (in {_span(left)})" if left > 0 else f"{when(at)} (overdue by {_span(-left)})"


def _span(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


@click.group()
def batches() -> None:
    """Batches on a running server: list, get, create, submit, cancel, download results, tail them while they run;
    pause, resume, retry."""


batches.add_command(batches_tail)


@batches.command("list")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="Batches per page.")
@click.option("--after", help="Start after this batch id (the cursor of the previous page).")
@click.option("--all", "every", is_flag=True, help="Follow pages to the end.")
@client_options
def batches_list(limit: int, after: str | None, every: bool, base_url: str, api_key: str, as_json: bool) -> None:
    """List batches, newest first (COUNTS is completed/failed/total). Columns that do not fit the terminal are
    left out (the model and endpoint first); the id is always whole."""
    from openai import omit

    with sdk_client(base_url, api_key) as client:
        page = client.batches.list(limit=limit, after=after or omit)
        found = list(page) if every else list(page.data)
    if as_json:
        echo_json([b.model_dump(mode="json") for b in found])
    else:
        print_table(LIST_COLUMNS, [[b.id, _status(b), b.endpoint, b.model or "", _counts(b),
                                    when(b.created_at, seconds=False)] for b in found])


@batches.command("get")
@click.argument("batch_id")
@client_options
def batches_get(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Show one batch: status, counts, the estimated completion while it runs (and since when it has gone first, at
    risk of missing its window), usage, file ids, timestamps."""
    with sdk_client(base_url, api_key) as client:
        b = client.batches.retrieve(batch_id)
    _print_batch(b, as_json)


def _metadata(pairs: tuple[str, ...]) -> dict[str, str] | None:
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--metadata")
        out[key] = value
    return out or None


def _batch_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--metadata", multiple=True, metavar="KEY=VALUE",
                      help="Metadata to attach (repeat for more keys; OpenAI allows 16).")(fn)
    fn = click.option("--completion-window", default="24h", show_default=True, help=WINDOW_HELP)(fn)
    return fn


def _create(client: OpenAI, file_id: str, endpoint: str, window: str, metadata: tuple[str, ...]) -> Batch:
    return client.batches.create(input_file_id=file_id, endpoint=endpoint,  # type: ignore[arg-type]
                                 completion_window=window, metadata=_metadata(metadata))  # type: ignore[arg-type]


@batches.command("create")
@click.argument("input_file_id")
@click.option("--endpoint", required=True, help="The endpoint of every line: /v1/chat/completions, /v1/embeddings, "
              "/v1/completions, /v1/responses, /v1/moderations, ...")
@_batch_options
@client_options
def batches_create(input_file_id: str, endpoint: str, completion_window: str, metadata: tuple[str, ...],
                   base_url: str, api_key: str, as_json: bool) -> None:
    """Create a batch from an uploaded file (`files upload`) and print its id."""
    with sdk_client(base_url, api_key) as client:
        b = _create(client, input_file_id, endpoint, completion_window, metadata)
    if as_json:
        echo_json(b.model_dump(mode="json"))
    else:
        click.echo(b.id)


def _first_url(path: Path) -> str:
    """The `url` of the file's first line: the endpoint `run` and `submit` use when none is given."""
    with open(path, "rb") as f:
        first = f.readline()
    try:
        url = json.loads(first).get("url")
    except (ValueError, AttributeError):
        url = None
    if not isinstance(url, str) or not url:
        raise click.UsageError(f"the first line of {path} has no \"url\": give --endpoint")
    return url


@batches.command("submit")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--endpoint", help="The endpoint of every line (default: the url of the first line).")
@_batch_options
@click.option("--wait", is_flag=True, help="Wait until the batch ends, showing its progress on stderr; exit 1 "
              "unless it completed.")
@click.option("-d", "--download", "directory", type=click.Path(path_type=Path, file_okay=False),
              help="When it ends, write BATCH_ID-output.jsonl and BATCH_ID-errors.jsonl here (implies --wait).")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              help="Seconds between two looks at the batch while waiting.")
@client_options
def batches_submit(path: Path, endpoint: str | None, completion_window: str, metadata: tuple[str, ...], wait: bool,
                   directory: Path | None, poll_interval: float, base_url: str, api_key: str, as_json: bool) -> None:
    """Upload a .jsonl file, create a batch from it and print the batch id; with --wait, follow it to the end.

    Ctrl-C while waiting stops the waiting, not the batch: it goes on on the server."""
    endpoint = endpoint or _first_url(path)
    with sdk_client(base_url, api_key) as client:
        uploaded = upload(client, path, "batch")
        b = _create(client, uploaded.id, endpoint, completion_window, metadata)
        if not as_json:
            click.echo(b.id)
        if not (wait or directory):
            if as_json:
                echo_json(b.model_dump(mode="json"))
            return
        b = wait_for(client, b, poll_interval)
        written = _download(client, b, directory) if directory else {}
    if as_json:
        echo_json(b.model_dump(mode="json"))
    else:
        for written_path in written.values():
            click.echo(written_path)
    if b.status != "completed":
        raise click.ClickException(_why(b))


def _why(b: Batch) -> str:
    errors = (b.errors.data if b.errors else None) or []
    reason = f": {errors[0].message}" if errors and errors[0].message else ""
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"batch {b.id} {b.status}{reason}{more}"


@batches.command("cancel")
@click.argument("batch_id")
@client_options
def batches_cancel(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Cancel a batch: it goes to `cancelling`, then `cancelled` with the results finished so far."""
    with sdk_client(base_url, api_key) as client:
        b = client.batches.cancel(batch_id)
    if as_json:
        _print_batch(b, True)
    else:
        click.echo(f"{b.id}: {b.status}")


def _download(client: OpenAI, b: Batch, directory: Path) -> dict[str, str]:
    """Write the batch's output and error files (those it has) into `directory`; their paths by kind."""
    wanted = {"output": b.output_file_id, "errors": b.error_file_id}
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for kind, file_id in wanted.items():
        if file_id is not None:
            path = directory / f"{b.id}-{kind}.jsonl"
            save(client, file_id, path)
            written[kind] = str(path)
    return written


@batches.command("download")
@click.argument("batch_id")
@click.option("-d", "--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              show_default=True, help="Where to write BATCH_ID-output.jsonl and BATCH_ID-errors.jsonl.")
@client_options
def batches_download(batch_id: str, directory: Path, base_url: str, api_key: str, as_json: bool) -> None:
    """Write a batch's output file and error file (those it has) to a directory."""
    with sdk_client(base_url, api_key) as client:
        b = client.batches.retrieve(batch_id)
        if not (b.output_file_id or b.error_file_id):
            raise click.ClickException(f"batch {b.id} is {b.status} and has no output or error file yet")
        written = _download(client, b, directory)
    if as_json:
        echo_json(written)
    else:
        for written_path in written.values():
            click.echo(written_path)


def _extension(client: OpenAI, path: str, body: dict[str, str]) -> Batch:
    from openai.types import Batch

    return client.post(path, cast_to=Batch, body=body)


@batches.command("pause")
@click.argument("batch_id")
@client_options
def batches_pause(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Pause a running batch: nothing more is sent; requests already sent finish. It stays in_progress (with
    `paused: true`) and its completion window keeps counting; `resume` goes on where it stopped."""
    with sdk_client(base_url, api_key) as client:
        b = _extension(client, f"/batches/{batch_id}/pause", {})
    if as_json:
        _print_batch(b, True)
    else:
        click.echo(f"{b.id}: {b.status} (paused)")


@batches.command("resume")
@click.argument("batch_id")
@client_options
def batches_resume(batch_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Resume a paused batch: its requests not yet run are sent again from where it stopped."""
    with sdk_client(base_url, api_key) as client:
        b = _extension(client, f"/batches/{batch_id}/resume", {})
    if as_json:
        _print_batch(b, True)
    else:
        click.echo(f"{b.id}: {b.status}")


@batches.command("retry")
@click.argument("batch_id")
@click.option("--unfinished", is_flag=True,
              help="Run the lines that never ran (the batch was cancelled or expired) instead of those that failed.")
@click.option("--completion-window", help="The new batch's window (default: the original's). " + WINDOW_HELP)
@client_options
def batches_retry(batch_id: str, unfinished: bool, completion_window: str | None, base_url: str, api_key: str,
                  as_json: bool) -> None:
    """Create a batch that runs again an ended batch's failed lines (or, with --unfinished, those never run), from
    the same input file: no upload. Prints the new batch's id; asked twice, the same batch."""
    body = {"only": "unfinished" if unfinished else "failed"}
    if completion_window:
        body["completion_window"] = completion_window
    with sdk_client(base_url, api_key) as client:
        b = _extension(client, f"/batches/{batch_id}/retry", body)
    if as_json:
        _print_batch(b, True)
    else:
        total = b.request_counts.total if b.request_counts is not None else 0
        click.echo(f"{b.id}: {b.status}, retrying the {body['only']} lines of {batch_id}"
                   + (f" ({total} requests)" if total else ""))
