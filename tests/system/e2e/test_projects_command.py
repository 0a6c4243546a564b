"""`batchgate projects list|set` on the store a running server uses, on SQLite and on PostgreSQL: a weight set
from the terminal is what the admin API reports at once, and a bad weight or name is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, run_cli


@pytest.fixture(params=["sqlite", "postgres"])
def store_flags(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "postgres":
        return ["--database-url", request.getfixturevalue("pg_url")]
    return ["--data-dir", str(tmp_path / "data")]


def cli(*args: str, ok: bool = True) -> str:
    result = run_cli(list(args), env={"COLUMNS": "200"})
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout if ok else result.stderr


def test_set_and_list_weights(store_flags: list[str], server_factory: Any, tmp_path: Path) -> None:
    admin = cli("keys", "create", "--project", "ops", "--admin", *store_flags).strip()
    cli("keys", "create", "--project", "alice", *store_flags)
    assert json.loads(cli("projects", "list", "--json", *store_flags)) == [
        {"id": "alice", "object": "project", "name": "alice", "weight": 1.0},
        {"id": "ops", "object": "project", "name": "ops", "weight": 1.0},
    ]
    assert cli("projects", "set", "alice", "--weight", "3", *store_flags).strip() == "project alice: weight 3"
    assert cli("projects", "set", "bob", "--weight", "0.5", *store_flags).strip() == "project bob: weight 0.5"
    table = cli("projects", "list", *store_flags).splitlines()
    assert [line.split() for line in table] == [["NAME", "WEIGHT"], ["alice", "3"], ["bob", "0.5"], ["ops", "1"]]

    server: BatchgateServer = server_factory(data_dir=tmp_path / "data", args=store_flags)
    listed = server.client(api_key=admin).get("/admin/projects", cast_to=object)
    assert isinstance(listed, dict)
    assert {p["name"]: p["weight"] for p in listed["data"]} == {"alice": 3.0, "bob": 0.5, "ops": 1.0}
    cli("projects", "set", "alice", "--weight", "2", *store_flags)  # while it runs: the API sees it at once
    assert server.client(api_key=admin).get("/admin/projects/alice", cast_to=object) == {
        "id": "alice", "object": "project", "name": "alice", "weight": 2.0}


@pytest.mark.parametrize(("name", "weight", "message"), [
    ("alice", "0", "Error: Invalid 'weight': must be a number greater than 0 and at most 1000, got 0."),
    ("alice", "1001", "Error: Invalid 'weight': must be a number greater than 0 and at most 1000, got 1001."),
    ("alice", "inf", "Error: Invalid 'weight': must be a number greater than 0 and at most 1000, got inf."),
    ("bad name", "2", "Error: A project name is 1-128 letters, digits, '-' or '_'."),
])
def test_bad_weights_and_names_are_refused(tmp_path: Path, name: str, weight: str, message: str) -> None:
    flags = ["--data-dir", str(tmp_path)]
    assert cli("projects", "set", name, "--weight", weight, *flags, ok=False).strip() == message
    assert json.loads(cli("projects", "list", "--json", *flags)) == []


def test_a_mistyped_data_dir_is_not_a_new_empty_store(tmp_path: Path) -> None:
    refused = cli("projects", "list", "--data-dir", str(tmp_path / "typo"), ok=False)
    assert refused.strip() == f"Error: no database at {tmp_path / 'typo'}/batchgate.sqlite3: is --data-dir right?"
    assert not (tmp_path / "typo").exists()
