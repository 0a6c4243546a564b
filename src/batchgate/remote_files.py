"""`batchgate files list|upload|download|delete`: a running server's Files API from the terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchgate.cli_table import Column, print_table
from batchgate.remote_cli import client_options, echo_json, sdk_client, when

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import FileObject


@click.group()
def files() -> None:
    """Files on a running server: list, upload, download, delete."""


def _file_rows(found: list[FileObject]) -> list[list[str]]:
    return [[f.id, f.filename, f.purpose, str(f.bytes), when(f.created_at, seconds=False)] for f in found]


@files.command("list")
@click.option("--purpose", help="Only files with this purpose (batch, batch_output, ...).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True, help="Files per page.")
@click.option("--all", "every", is_flag=True, help="Follow pages to the end.")
@client_options
def files_list(purpose: str | None, limit: int, every: bool, base_url: str, api_key: str, as_json: bool) -> None:
    """List files, newest first."""
    from openai import omit

    with sdk_client(base_url, api_key) as client:
        page = client.files.list(limit=limit, purpose=purpose or omit)
        found = list(page) if every else list(page.data)
    if as_json:
        echo_json([f.model_dump(mode="json") for f in found])
    else:
        print_table([Column("id"), Column("filename", rank=4, cut=True), Column("purpose", rank=1),
                     Column("bytes", rank=2), Column("created", rank=3)], _file_rows(found))


@files.command("upload")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--purpose", default="batch", show_default=True, help="The file's purpose.")
@client_options
def files_upload(path: Path, purpose: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Upload a file (e.g. a batch's .jsonl input) and print its id."""
    with sdk_client(base_url, api_key) as client:
        uploaded = upload(client, path, purpose)
    if as_json:
        echo_json(uploaded.model_dump(mode="json"))
    else:
        click.echo(uploaded.id)


def upload(client: OpenAI, path: Path, purpose: str) -> FileObject:
    with open(path, "rb") as f:
        return client.files.create(file=(path.name, f), purpose=purpose)  # type: ignore[arg-type]


@files.command("download")
@click.argument("file_id")
@click.option("-o", "--output", help="File or directory to write to, `-` for stdout (default: the file's own "
              "name, in the current directory).")
@client_options
def files_download(file_id: str, output: str | None, base_url: str, api_key: str, as_json: bool) -> None:
    """Download a file's content, streamed to disk (a partial download never takes the file's name)."""
    with sdk_client(base_url, api_key) as client:
        if output == "-":
            stdout = sys.stdout.buffer
            with client.files.with_streaming_response.content(file_id) as response:
                for chunk in response.iter_bytes():
                    stdout.write(chunk)
            stdout.flush()
            return
        path = Path(output) if output else Path(".")
        if path.is_dir():
            path = path / _local_name(client.files.retrieve(file_id))
        size = save(client, file_id, path)
    if as_json:
        echo_json({"id": file_id, "path": str(path), "bytes": size})
    else:
        click.echo(path)


def _local_name(f: FileObject) -> str:
    """The file's own name without any directory part; its id when the name is unusable."""
    name = os.path.basename(f.filename.replace("\\", "/"))
    return name if name not in ("", ".", "..") else f.id


def save(client: OpenAI, file_id: str, path: Path) -> int:
    """Stream a file's content to `path` through `path.part`; returns the bytes written."""
    partial = path.with_name(path.name + ".part")
    size = 0
    try:
        with client.files.with_streaming_response.content(file_id) as response:
            with open(partial, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        partial.replace(path)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return size


@files.command("delete")
@click.argument("file_id")
@client_options
def files_delete(file_id: str, base_url: str, api_key: str, as_json: bool) -> None:
    """Delete a file: it leaves listings and downloads at once."""
    with sdk_client(base_url, api_key) as client:
        deleted = client.files.delete(file_id)
    if as_json:
        echo_json(deleted.model_dump(mode="json"))
    else:
        click.echo(f"{deleted.id}: deleted")
