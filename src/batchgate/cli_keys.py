"""`batchgate keys create|list|revoke`: API keys, straight in the store (no server needed, none asked).

These open the database that `serve` uses (--data-dir or --database-url), so they work before the first
server starts (to bootstrap the first admin key) and while it runs: a created key works at once, a revoked
one stops at once (the server looks keys up on every request)."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from batchgate.cli_options import run_async, settings_from_flags, store_options
from batchgate.cli_table import Column, print_table
from batchgate.services.auth import OPERATOR, AuthService
from batchgate.settings import Settings
from batchgate.store.base import KeyInfo

T = TypeVar("T")


def _with_auth(settings: Settings, use: Callable[[AuthService], Awaitable[T]]) -> T:
    """Open the store, run `use` on an AuthService over it, close the store."""
    from batchgate.store.factory import make_store

    async def go() -> T:
        store = make_store(settings)
        await store.open()
        try:
            return await use(AuthService(store))
        finally:
            await store.close()

    return run_async(go())


def existing_settings(data_dir: Path | None, database_url: str | None) -> Settings:
    """Settings for a command that reads the store (keys, projects): a mistyped --data-dir is an error, not a new
    empty database."""
    settings = settings_from_flags(data_dir=data_dir, database_url=database_url)
    if settings.database_url is None and not settings.db_path.exists():
        raise click.ClickException(f"no database at {settings.db_path}: is --data-dir right?")
    return settings


@click.group()
def keys() -> None:
    """Manage API keys (in the store itself: --data-dir or --database-url, like `serve`)."""


@keys.command("create")
@click.option("--project", required=True, help="Project the key belongs to; it sees only this project's objects.")
@click.option("--admin", is_flag=True, help="An admin key sees every project's objects.")
@store_options
def keys_create(project: str, admin: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Create an API key and print it (only its hash is stored: it cannot be shown again)."""
    settings = settings_from_flags(data_dir=data_dir, database_url=database_url)
    key = _with_auth(settings, lambda auth: auth.create_key(project, admin))
    click.echo(f"Created {'an admin' if admin else 'a'} key for project {project!r}. Store it now:", err=True)
    click.echo(key)


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _as_json(k: KeyInfo) -> dict[str, object]:
    return {"id": k.id, "object": "api_key", "project": k.project, "admin": k.admin, "created_at": k.created_at}


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def keys_list(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List API keys: id, project, admin, created (never the key or its hash)."""
    found = _with_auth(existing_settings(data_dir, database_url), lambda auth: auth.list_keys(OPERATOR))
    if as_json:
        click.echo(json.dumps([_as_json(k) for k in found], indent=2))
        return
    print_table([Column("id"), Column("project", cut=True, rank=1), Column("admin"), Column("created")],
                [[k.id, k.project, "yes" if k.admin else "", _when(k.created_at)] for k in found])


@keys.command("revoke")
@click.argument("key_id")
@store_options
def keys_revoke(key_id: str, data_dir: Path | None, database_url: str | None) -> None:
    """Revoke an API key by its id (from `keys list`): requests with it fail with 401 at once."""
    _with_auth(existing_settings(data_dir, database_url), lambda auth: auth.revoke(OPERATOR, key_id))
    click.echo(f"revoked {key_id}")
