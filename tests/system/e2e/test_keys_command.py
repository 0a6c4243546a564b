"""`batchgate keys create|list|revoke` on the store a running server uses, on SQLite and on PostgreSQL: list
never shows a key or its hash, and a revoked key stops working at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer, run_cli

from batchgate.services.auth import hash_key


@pytest.fixture(params=["sqlite", "postgres"])
def store_flags(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    if request.param == "postgres":
        return ["--database-url", request.getfixturevalue("pg_url")]
    return ["--data-dir", str(tmp_path / "data")]


def keys(*args: str, ok: bool = True) -> str:
    result = run_cli(["keys", *args], env={"COLUMNS": "200"})
    assert (result.returncode == 0) == ok, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout if ok else result.stderr


def test_list_and_revoke(store_flags: list[str], server_factory: Any, tmp_path: Path) -> None:
    admin = keys("create", "--project", "ops", "--admin", *store_flags).strip()
    alice = keys("create", "--project", "alice", *store_flags).strip()
    server: BatchgateServer = server_factory(data_dir=tmp_path / "data", args=store_flags)

    listed = json.loads(keys("list", "--json", *store_flags))
    # Ordered by creation time, then id: two keys made in the same second may come either way.
    assert sorted((k["project"], k["admin"]) for k in listed) == [("alice", False), ("ops", True)]
    assert all(set(k) == {"id", "object", "project", "admin", "created_at"} for k in listed)
    table = keys("list", *store_flags)
    assert table.splitlines()[0].split() == ["ID", "PROJECT", "ADMIN", "CREATED"]
    for k in listed:
        assert k["id"] in table
    for secret in (admin, alice):  # neither the key nor its hash, in either form
        assert secret not in table + json.dumps(listed) and hash_key(secret) not in table + json.dumps(listed)

    alice_client = server.client(api_key=alice)
    assert alice_client.files.list().data == []
    alice_id = next(k["id"] for k in listed if k["project"] == "alice")
    assert keys("revoke", alice_id, *store_flags).strip() == f"revoked {alice_id}"
    with pytest.raises(openai.AuthenticationError):
        alice_client.files.list()
    assert server.client(api_key=admin).files.list().data == []
    assert [k["project"] for k in json.loads(keys("list", "--json", *store_flags))] == ["ops"]

    again = keys("revoke", alice_id, *store_flags, ok=False)
    assert again.strip() == f"Error: No such API key: {alice_id}"


def test_a_mistyped_data_dir_is_not_a_new_empty_store(tmp_path: Path) -> None:
    for command in (["list"], ["revoke", "key_x"]):
        refused = keys(*command, "--data-dir", str(tmp_path / "typo"), ok=False)
        assert refused.strip() == f"Error: no database at {tmp_path / 'typo'}/batchgate.sqlite3: is --data-dir right?"
    assert not (tmp_path / "typo").exists()
