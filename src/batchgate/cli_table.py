"""Tables for the terminal that never wrap, as `kubectl get` prints them: one line per row, columns that do not
fit the width left out (the least useful first), long free-text cells cut with an ellipsis, and the first column
(an id that the next command needs) always whole.

A wrapped row is worse than a missing column: the id breaks across lines, and `grep` or a copy picks up half.
When stdout is not a terminal (a pipe, a file) and COLUMNS is unset, nothing is left out."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size

GAP = "  "
MIN_CUT = 8  # a free-text column is shown cut to no fewer cells than this, or not at all


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    rank: int = 0  # which columns stay when space runs out: lower ranks first (the first column always stays)
    cut: bool = False  # free text (a model, a filename) that may be shortened with an ellipsis


def terminal_width() -> int | None:
    """COLUMNS if set, else the terminal's width, else None (not a terminal: no limit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def fit(columns: list[Column], rows: list[list[str]], width: int | None) -> list[str]:
    """The header and one line per row, each at most `width` cells (except a first column wider than that)."""
    natural = [max([cell_len(c.name), *(cell_len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    shown = {0: natural[0]}
    used = natural[0]
    for i in sorted(range(1, len(columns)), key=lambda i: columns[i].rank):
        room = natural[i] if width is None else width - used - len(GAP)
        size = natural[i] if natural[i] <= room else room if columns[i].cut and room >= MIN_CUT else 0
        if not size:
            break  # strictly by rank: a column never shows while a more useful one is left out
        shown[i] = size
        used += len(GAP) + size
    keep = sorted(shown)
    lines = [[c.name.upper() for c in columns], *rows]
    return [GAP.join(_cell(line[i], shown[i]) for i in keep).rstrip() for line in lines]


def _cell(text: str, size: int) -> str:
    if cell_len(text) <= size:
        return set_cell_size(text, size)
    return set_cell_size(text, size - 1) + "…"


def print_table(columns: list[Column], rows: list[list[str]]) -> None:
    import click

    for line in fit(columns, rows, terminal_width()):
        click.echo(line)
