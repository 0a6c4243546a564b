"""The layers of docs/architecture.md hold for every import, the way tests/test_docs.py holds the settings table.

Every import of ours is read with `ast`: at module level, inside functions, and under `if TYPE_CHECKING:` (a
type-only import is still a dependency a reader must follow). Each module belongs to a unit (a package, or a
group of top-level modules); each unit sits on a row; a module may import its own unit and the units of lower
rows, never a peer on its own row or anything above it, with the few exceptions named below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import batchgate

# The package under test: the one on sys.path, so the test can be pointed at another checkout's src/.
PACKAGE = Path(batchgate.__file__).parent

# Rows, lowest first. `domain` imports nothing of ours.
ROWS: list[set[str]] = [
    {"domain"},
    {"kernel"},  # errors, ids, clock, settings, logs, runtime: used by every row above the domain
    {"protocol", "store", "blobs", "upstream", "engine"},
    {"services", "metrics"},
    {"api", "dashboard", "cli", "worker"},
    {"wiring"},  # builds and connects the running parts
    {"entry"},  # what a command starts: the CLI, `run`, `batchgate worker`, the app factory
]

KERNEL = {"errors", "ids", "clock", "settings", "logs", "runtime", "__init__"}
CLI_HELPERS = {"cli_keys", "cli_projects", "cli_options", "cli_table", "startup", "remote_batches", "remote_cli",
               "remote_files", "remote_tail", "remote_wait", "oneshot_output", "oneshot_progress", "oneshot_signals",
               "oneshot_state", "oneshot_outage"}
ENTRY_POINTS = {"batchgate.cli", "batchgate.__main__", "batchgate.oneshot", "batchgate.worker_process",
                "batchgate.api.app", "batchgate.settings_doc"}  # settings_doc walks the CLI for its flags

# A peer on the same row may be imported only here: the local engine implements upstream's Executor protocol.
PEER_IMPORTS = {("engine", "upstream")}
# On top of the rows: the API and the dashboard see the worker and the routes only through services
# (services/worker_view.py), never the upstream clients, the engine, the worker or the wiring themselves.
NEVER = {("api", "upstream"), ("api", "engine"), ("dashboard", "upstream"), ("dashboard", "engine")}

RANK = {unit: i for i, row in enumerate(ROWS) for unit in row}


def unit_of(module: str) -> str:
    """The unit a dotted module name (`batchgate.x.y`) belongs to."""
    if module in ENTRY_POINTS:
        return "entry"
    parts = module.split(".")
    if len(parts) == 1:
        return "kernel"  # the package itself (its __version__)
    top = parts[1]
    if (PACKAGE / top).is_dir():
        return top
    if top in KERNEL:
        return "kernel"
    if top in CLI_HELPERS:
        return "cli"
    return top  # a module nobody placed: test_every_module_has_a_row says so


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted module) for every import of ours anywhere in the tree, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "batchgate":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "batchgate":
                continue
            for alias in node.names:
                # `from batchgate.domain import limits` imports a module; `from batchgate.errors import X` a name.
                candidate = f"{base}.{alias.name}"
                rel = Path(*candidate.split(".")[1:])
                is_module = (PACKAGE / rel).is_dir() or (PACKAGE / rel).with_suffix(".py").exists()
                yield node.lineno, candidate if is_module else base


def problem(importer: str, target: str) -> str | None:
    """Why `importer` may not import `target` (dotted names), or None when it may."""
    a, b = unit_of(importer), unit_of(target)
    if a == b or a == "entry":
        return None
    if b == "api":
        return "nothing imports api but the entry points"
    if (a, b) in NEVER:
        return f"{a} sees the worker and its routes only through services, never {b}"
    if a not in RANK or b not in RANK:
        return None  # reported by test_every_module_has_a_row
    if a == "domain":
        return "domain imports nothing of ours"
    if RANK[b] > RANK[a]:
        return f"{a} is below {b}"
    if RANK[b] == RANK[a] and (a, b) not in PEER_IMPORTS:
        return f"{a} and {b} are peers; neither imports the other"
    return None


def violations(path: Path) -> list[str]:
    module = module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for line, target in imported(tree, module, path.name == "__init__.py"):
        why = problem(module, target)
        if why is not None:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}: {why}")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    found = violations(path)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_a_row(path: Path) -> None:
    """A new top-level module must be placed (KERNEL, CLI_HELPERS or ENTRY_POINTS) before it can be checked."""
    assert unit_of(module_name(path)) in RANK


@pytest.mark.parametrize(("importer", "target", "why"), [
    ("batchgate.domain.validation", "batchgate.errors", "domain imports nothing of ours"),
    ("batchgate.worker.thread", "batchgate.wiring.parts", "worker is below wiring"),
    ("batchgate.upstream.router", "batchgate.engine.local", "upstream and engine are peers"),
    ("batchgate.dashboard.deps", "batchgate.worker.runner", "dashboard and worker are peers"),
    ("batchgate.api.context", "batchgate.upstream.router", "api sees the worker and its routes only through services"),
    ("batchgate.wiring.parts", "batchgate.api.context", "nothing imports api but the entry points"),
    ("batchgate.store.sqlite", "batchgate.services.files", "store is below services"),
])
def test_the_rule_refuses(importer: str, target: str, why: str) -> None:
    assert why in (problem(importer, target) or "")


@pytest.mark.parametrize(("importer", "target"), [
    ("batchgate.engine.local", "batchgate.upstream.executor"),
    ("batchgate.api.app", "batchgate.wiring.parts"),
    ("batchgate.cli", "batchgate.api.app"),
    ("batchgate.worker.runner", "batchgate.services.files"),
    ("batchgate.wiring.routes", "batchgate.engine.local"),
    ("batchgate.errors", "batchgate.domain.json_types"),
])
def test_the_rule_allows(importer: str, target: str) -> None:
    assert problem(importer, target) is None


def test_imports_in_functions_and_type_checking_blocks_are_read(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from batchgate.wiring.parts import Parts\n"
        "def f() -> None:\n    from batchgate.engine import local\n"
        "    import batchgate.api.app\n"
    )
    found = sorted(target for _, target in imported(ast.parse(source), "batchgate.upstream.router", False))
    assert found == ["batchgate.api.app", "batchgate.engine.local", "batchgate.wiring.parts"]
