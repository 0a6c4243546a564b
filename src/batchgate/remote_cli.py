"""What `batchgate batches ...` and `batchgate files ...` share: the client flags, the SDK client, the outputs.

They talk HTTP to the server with the official `openai` SDK, exactly as any other client would, so they work
against any batchgate (or OpenAI itself). Tables for people, `--json` for scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from openai import OpenAI

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# The SDK refuses an empty key; a keyless batchgate on loopback accepts any bearer.
DEFAULT_API_KEY = "local"


def client_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)
    return connection_options(fn)


def connection_options(fn: Callable[..., None]) -> Callable[..., None]:
    """--base-url and --api-key alone (for commands whose output is JSON anyway)."""
    fn = click.option("--api-key", envvar=["BATCHGATE_API_KEY", "OPENAI_API_KEY"], default=DEFAULT_API_KEY,
                      show_default=False, help="API key. [env BATCHGATE_API_KEY, then OPENAI_API_KEY]")(fn)
    fn = click.option("--base-url", envvar="BATCHGATE_BASE_URL", default=DEFAULT_BASE_URL, show_default=True,
                      help="The server's /v1 URL. [env BATCHGATE_BASE_URL]")(fn)
    return fn


@contextmanager
def sdk_client(base_url: str, api_key: str) -> Iterator[OpenAI]:
    """The SDK client; API errors become one-line CLI errors instead of tracebacks."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key or DEFAULT_API_KEY, max_retries=2)
    try:
        yield client
    except openai.APIStatusError as e:
        body = e.body if isinstance(e.body, dict) else {}
        message = body.get("message") or e.message
        raise click.ClickException(f"{e.status_code}: {message}") from None
    except openai.APIConnectionError:
        raise click.ClickException(f"cannot reach {base_url}: is `batchgate serve` running there?") from None
    finally:
        client.close()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def when(ts: int | None, seconds: bool = True) -> str:
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.localtime(ts)) if ts else ""
