"""`batchgate projects list|set`: projects and their weights, straight in the store (no server needed, none asked),
like `batchgate keys`. A weight set here is read by every worker's planner at its next tick (about a second)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from batchgate.cli_keys import existing_settings
from batchgate.cli_options import run_async, settings_from_flags, store_options
from batchgate.cli_table import Column, print_table
from batchgate.domain.projects import MAX_WEIGHT, Project
from batchgate.protocol.requests import SetProjectWeight
from batchgate.services.auth import OPERATOR
from batchgate.services.projects import ProjectService
from batchgate.settings import Settings

T = TypeVar("T")


def _with_projects(settings: Settings, use: Callable[[ProjectService], Awaitable[T]]) -> T:
    """Open the store, run `use` on a ProjectService over it, close the store."""
    from batchgate.store.factory import make_store

    async def go() -> T:
        store = make_store(settings)
        await store.open()
        try:
            return await use(ProjectService(store))
        finally:
            await store.close()

    return run_async(go())


def _as_json(p: Project) -> dict[str, object]:
    return {"id": p.name, "object": "project", "name": p.name, "weight": p.weight}


@click.group()
def projects() -> None:
    """Projects and their weights (in the store itself: --data-dir or --database-url, like `serve`).

    Each upstream is shared between the projects that have work for it in proportion to their weights: with
    weights 3 and 1, 75% and 25% while both have work. A project that was never given a weight weighs 1."""


@projects.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@store_options
def projects_list(as_json: bool, data_dir: Path | None, database_url: str | None) -> None:
    """List every project (with a key or a weight) and its weight."""
    found = _with_projects(existing_settings(data_dir, database_url), lambda s: s.list(OPERATOR))
    if as_json:
        click.echo(json.dumps([_as_json(p) for p in found], indent=2))
        return
    print_table([Column("name"), Column("weight")], [[p.name, f"{p.weight:g}"] for p in found])


@projects.command("set")
@click.argument("name")
@click.option("--weight", type=float, required=True, help=f"The project's weight: greater than 0, at most "
              f"{MAX_WEIGHT:g} (every project without one weighs 1).")
@store_options
def projects_set(name: str, weight: float, data_dir: Path | None, database_url: str | None) -> None:
    """Set a project's weight (a project may get one before it has a key)."""
    settings = settings_from_flags(data_dir=data_dir, database_url=database_url)
    p = _with_projects(settings, lambda s: s.set_weight(OPERATOR, SetProjectWeight(name, weight)))
    click.echo(f"project {p.name}: weight {p.weight:g}")
