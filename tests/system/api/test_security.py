"""Admin keys, per-key rate limits, the enqueued-token limit, JSON size limits, and secrets kept out of logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from harness import create_key, run_cli
from helpers import assert_envelope, chat_line, raw, raw_json, run_batch, unique, upload_input


def admin_key(data_dir: Path, project: str = "ops") -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    r = run_cli(["keys", "create", "--project", project, "--admin", "--data-dir", str(data_dir)])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_admin_api_manages_keys_and_sees_every_project(server_factory: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = admin_key(data)
    alice = create_key(data, "alice")
    server = server_factory(data_dir=data)

    # a project key may not use the admin API
    r = raw(server.url, "GET", "/v1/admin/keys", api_key=alice)
    assert_envelope(r, 403, code="insufficient_permissions")
    # refused before its body is read: a project key learns nothing from what it sent
    r = raw(server.url, "POST", "/v1/admin/keys", "{not json", headers={"Content-Type": "application/json"},
            api_key=alice)
    assert_envelope(r, 403, code="insufficient_permissions")
    r = raw_json(server.url, "POST", "/v1/admin/keys", {"project": "bad name!", "admin": "yes"}, api_key=alice)
    assert_envelope(r, 403, code="insufficient_permissions")

    r = raw_json(server.url, "POST", "/v1/admin/keys", {"project": "bob"}, api_key=root)
    assert r.status == 200, r.body
    made = r.json()
    assert made["object"] == "api_key" and made["project"] == "bob" and made["key"].startswith("bg-")
    bob = server.client(api_key=made["key"])
    bob_file = upload_input(bob, [chat_line(unique())])

    listed = raw(server.url, "GET", "/v1/admin/keys", api_key=root).json()
    assert {k["project"] for k in listed["data"]} == {"ops", "alice", "bob"}
    assert all("key" not in k for k in listed["data"])  # secrets are never shown again
    projects = raw(server.url, "GET", "/v1/admin/projects", api_key=root).json()
    assert [p["id"] for p in projects["data"]] == ["alice", "bob", "ops"]

    # bob's file: invisible to alice, visible to the admin key
    with pytest.raises(openai.NotFoundError):
        server.client(api_key=alice).files.retrieve(bob_file)
    admin = server.client(api_key=root)
    assert admin.files.retrieve(bob_file).id == bob_file
    assert bob_file in {f.id for f in admin.files.list()}

    # revoked keys stop working at once
    r = raw(server.url, "DELETE", f"/v1/admin/keys/{made['id']}", api_key=root)
    assert r.status == 200 and r.json()["deleted"] is True
    with pytest.raises(openai.AuthenticationError):
        bob.files.list()
    r = raw(server.url, "DELETE", f"/v1/admin/keys/{made['id']}", api_key=root)
    assert_envelope(r, 404)
    r = raw_json(server.url, "POST", "/v1/admin/keys", {"project": "bad name!"}, api_key=root)
    assert_envelope(r, 400, param="project")
    r = raw_json(server.url, "POST", "/v1/admin/keys", {"project": "x", "admin": "yes"}, api_key=root)
    assert_envelope(r, 400, code="invalid_type", param="admin")


def test_rate_limits_on_uploads_and_batch_creation(server_factory: Any) -> None:
    server = server_factory(env={"BATCHGATE_UPLOAD_RATE_LIMIT": "3", "BATCHGATE_BATCH_RATE_LIMIT": "2"})
    client = server.client()
    file_ids = [upload_input(client, [chat_line(unique())]) for _ in range(3)]
    with pytest.raises(openai.RateLimitError) as e:
        upload_input(client, [chat_line(unique())])
    assert e.value.code == "rate_limit_exceeded"
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
    # other calls are not limited
    assert client.files.retrieve(file_ids[0]).id == file_ids[0]
    for fid in file_ids[:2]:
        client.batches.create(input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.RateLimitError):
        client.batches.create(input_file_id=file_ids[2], endpoint="/v1/chat/completions", completion_window="24h")


def test_enqueued_token_limit(server_factory: Any) -> None:
    # o200k_base: "word " is one token; 60 words per request
    server = server_factory(env={"BATCHGATE_ENQUEUED_TOKEN_LIMIT": "500", "BATCHGATE_UPSTREAM_CONCURRENCY": "1"})
    client = server.client()
    text = "word " * 60
    small = run_batch(client, [chat_line(unique(), text) for _ in range(2)])
    assert small.status == "completed"
    big = run_batch(client, [chat_line(unique(), text) for _ in range(10)])
    assert big.status == "failed"
    assert big.errors is not None and big.errors.data is not None
    err = big.errors.data[0]
    assert err.code == "token_limit_exceeded" and "500" in (err.message or "")


def test_json_bodies_over_the_limit_get_413(server: Any) -> None:
    body = {"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h",
            "metadata": {"k": "v" * 2_000_000}}
    r = raw_json(server.url, "POST", "/v1/batches", body)
    assert_envelope(r, 413, code="payload_too_large")


def test_secrets_never_reach_logs_errors_or_outputs(server_factory: Any, fake_upstream_factory: Any,
                                                     tmp_path: Path) -> None:
    upstream_secret = "sk-upstream-" + "S3CR3T" * 4
    fake = fake_upstream_factory()
    data = tmp_path / "data"
    client_key = create_key(data, "alice")
    server = server_factory(upstream=fake.base_url, data_dir=data,
                            args=["--upstream-api-key", upstream_secret], env={"BATCHGATE_LOG_LEVEL": "debug"})
    client = server.client(api_key=client_key)
    bad = chat_line(unique(), x_fake={"status": 401, "body": {"error": {"message": "bad key", "type": "auth"}}})
    batch = run_batch(client, [chat_line(unique()), bad])
    assert batch.status == "completed"
    assert fake.stats()["auth"]  # the upstream did get the key
    wrong = "bg-" + "W" * 40
    r = raw(server.url, "GET", "/v1/files", api_key=wrong)
    assert_envelope(r, 401, code="invalid_api_key")
    assert wrong not in r.body.decode() and "W" * 10 not in r.body.decode()
    texts = [server.log_path.read_text(errors="replace"), r.body.decode()]
    for fid in (batch.output_file_id, batch.error_file_id):
        assert fid is not None
        texts.append(client.files.content(fid).text)
    for text in texts:
        assert upstream_secret not in text and "S3CR3T" not in text
        assert client_key not in text and wrong not in text
