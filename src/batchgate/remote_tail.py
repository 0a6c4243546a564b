"""`batchgate batches tail ID`: follow a batch's results while it runs (the extension route GET
/v1/batches/{id}/results, docs/extensions.md), printing each result line as it is recorded, until the batch ends.

Long polls through the official SDK's `client.get`, so it works wherever the SDK does; the cursor of the last
page goes to stderr when interrupted, so `--after` can pick up where it stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from batchgate.remote_cli import connection_options, sdk_client

if TYPE_CHECKING:
    from openai import OpenAI

WAIT_SECONDS = 30  # each request waits this long for a line before it asks again


def follow(client: OpenAI, batch_id: str, after: str = "0", limit: int = 1000,
           on_page: Callable[[dict[str, Any]], None] | None = None) -> Iterator[dict[str, Any]]:
    """Every result line of the batch after the cursor `after`, as it is recorded, until the batch ends. `on_page`
    sees each page's facts (cursor, batch_status, done, file ids) without its lines."""
    cursor = after
    while True:
        page: dict[str, Any] = client.get(
            f"/batches/{batch_id}/results", cast_to=dict,
            options={"params": {"after": cursor, "limit": limit, "wait": WAIT_SECONDS}},
        )
        yield from page["data"]
        cursor = page["cursor"]
        if on_page is not None:
            on_page({k: v for k, v in page.items() if k != "data"})
        if page["done"]:
            return


@click.command("tail")
@click.argument("batch_id")
@click.option("--after", default="0", show_default=True,
              help="Start after this cursor (printed on stderr when tail is interrupted); 0: from the first line.")
@click.option("--errors", "only", flag_value="errors", help="Print only the lines of the error file.")
@click.option("--output", "only", flag_value="output", help="Print only the lines of the output file.")
@connection_options
def batches_tail(batch_id: str, after: str, only: str | None, base_url: str, api_key: str) -> None:
    """Print a batch's result lines (JSONL, as in its output and error files) as they are recorded, until it
    ends; then its status on stderr. Ctrl-C stops the following, not the batch."""
    import json

    state: dict[str, Any] = {"cursor": after}
    with sdk_client(base_url, api_key) as client:
        try:
            for line in follow(client, batch_id, after, on_page=state.update):
                if only is None or (only == "output") == _is_output(line):
                    click.echo(json.dumps(line, separators=(",", ":")))
        except KeyboardInterrupt:
            click.echo(f"stopped; resume with --after {state['cursor']}", err=True)
            raise SystemExit(130) from None
    click.echo(f"batch {batch_id} {state.get('batch_status')}", err=True)


def _is_output(line: dict[str, Any]) -> bool:
    """Whether the line is one of the output file's: a 2xx answer (everything else is in the error file)."""
    response = line.get("response") or {}
    status = response.get("status_code")
    return isinstance(status, int) and 200 <= status < 300
