"""API keys and projects: 401 without a valid key, and no project sees another project's objects."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from harness import BatchgateServer, base_env, create_key, free_port
from helpers import (
    assert_envelope,
    chat_line,
    raw,
    raw_json,
    submit_batch,
    upload_input,
    wait_for_batch,
)
from openai import OpenAI


@dataclass
class Projects:
    server: BatchgateServer
    alpha_key: str
    beta_key: str
    alpha: OpenAI
    beta: OpenAI


@pytest.fixture(scope="module")
def projects(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Projects]:
    data_dir = tmp_path_factory.mktemp("auth") / "data"
    alpha_key = create_key(data_dir, "alpha")
    beta_key = create_key(data_dir, "beta")
    assert alpha_key != beta_key
    server = module_server_factory(data_dir=data_dir)
    yield Projects(server, alpha_key, beta_key, server.client(api_key=alpha_key), server.client(api_key=beta_key))


@dataclass
class AlphaObjects:
    input_file: str
    batch: str
    output_file: str
    error_file: str
    upload: str
    running_batch: str


@pytest.fixture(scope="module")
def alpha_objects(projects: Projects) -> AlphaObjects:
    alpha = projects.alpha
    lines = [
        chat_line("ok-1"),
        chat_line("bad-1", x_fake={"status": 400, "body": {"error": {"message": "no"}}}),
    ]
    batch = submit_batch(alpha, lines)
    done = wait_for_batch(alpha, batch.id)
    assert done.output_file_id and done.error_file_id
    upload = alpha.uploads.create(filename="a.jsonl", purpose="batch", bytes=10, mime_type="application/jsonl")
    running = submit_batch(alpha, [chat_line("slow", x_fake={"hang": True})])
    return AlphaObjects(done.input_file_id, done.id, done.output_file_id, done.error_file_id, upload.id, running.id)


def test_keys_create_prints_key(tmp_path: Path) -> None:
    key = create_key(tmp_path / "d", "p1")
    assert len(key) > 20
    assert create_key(tmp_path / "d", "p1") != key


def test_missing_authorization_header(projects: Projects) -> None:
    response = raw(projects.server.base_url, "GET", "/files", api_key=None)
    assert_envelope(response, 401)


@pytest.mark.parametrize("header", ["Bearer bg-wrong", "Bearer ", "Basic dXNlcjpwYXNz", "bg-nobearer"])
def test_invalid_authorization(projects: Projects, header: str) -> None:
    response = raw(projects.server.base_url, "GET", "/batches", api_key=None, headers={"Authorization": header})
    assert_envelope(response, 401)


def test_wrong_key_through_sdk(projects: Projects) -> None:
    client = projects.server.client(api_key="bg-not-a-real-key")
    with pytest.raises(openai.AuthenticationError) as info:
        client.files.list()
    assert info.value.status_code == 401
    assert info.value.type


ROUTES = [
    ("GET", "/files"),
    ("POST", "/files"),
    ("GET", "/files/file-x"),
    ("DELETE", "/files/file-x"),
    ("GET", "/files/file-x/content"),
    ("POST", "/uploads"),
    ("POST", "/uploads/upload_x/parts"),
    ("POST", "/uploads/upload_x/complete"),
    ("POST", "/uploads/upload_x/cancel"),
    ("GET", "/batches"),
    ("POST", "/batches"),
    ("GET", "/batches/batch_x"),
    ("POST", "/batches/batch_x/cancel"),
    ("GET", "/models"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_key(projects: Projects, method: str, path: str) -> None:
    response = raw(
        projects.server.base_url,
        method,
        path,
        body=b"{}" if method == "POST" else None,
        headers={"Content-Type": "application/json"},
        api_key=None,
    )
    assert_envelope(response, 401)


def test_health_needs_no_key(projects: Projects) -> None:
    assert raw(projects.server.url, "GET", "/health", api_key=None).status == 200


def test_owner_sees_everything(projects: Projects, alpha_objects: AlphaObjects) -> None:
    alpha = projects.alpha
    for file_id in (alpha_objects.input_file, alpha_objects.output_file, alpha_objects.error_file):
        assert alpha.files.retrieve(file_id).id == file_id
        assert alpha.files.content(file_id).content
    assert alpha.batches.retrieve(alpha_objects.batch).id == alpha_objects.batch
    ids = {f.id for f in alpha.files.list()}
    assert {alpha_objects.input_file, alpha_objects.output_file, alpha_objects.error_file} <= ids
    assert alpha_objects.batch in {b.id for b in alpha.batches.list(limit=100)}


@pytest.mark.parametrize("which", ["input_file", "output_file", "error_file"])
def test_other_project_cannot_touch_files(projects: Projects, alpha_objects: AlphaObjects, which: str) -> None:
    beta = projects.beta
    file_id = getattr(alpha_objects, which)
    for call in (beta.files.retrieve, beta.files.content, beta.files.delete):
        with pytest.raises(openai.NotFoundError) as info:
            call(file_id)
        assert isinstance(info.value.body, dict)
        assert info.value.body["message"] == f"No such File object: {file_id}"
    assert projects.alpha.files.retrieve(file_id).id == file_id  # the failed delete changed nothing


def test_other_project_cannot_touch_batches(projects: Projects, alpha_objects: AlphaObjects) -> None:
    beta = projects.beta
    for batch_id in (alpha_objects.batch, alpha_objects.running_batch):
        with pytest.raises(openai.NotFoundError):
            beta.batches.retrieve(batch_id)
        with pytest.raises(openai.NotFoundError):
            beta.batches.cancel(batch_id)
    assert projects.alpha.batches.retrieve(alpha_objects.running_batch).status in {
        "validating",
        "in_progress",
    }


def test_other_project_cannot_touch_uploads(projects: Projects, alpha_objects: AlphaObjects) -> None:
    beta = projects.beta
    with pytest.raises(openai.NotFoundError):
        beta.uploads.parts.create(alpha_objects.upload, data=b"0123456789")
    with pytest.raises(openai.NotFoundError):
        beta.uploads.complete(alpha_objects.upload, part_ids=["part_x"])
    with pytest.raises(openai.NotFoundError):
        beta.uploads.cancel(alpha_objects.upload)
    # Alpha's upload is untouched and still usable.
    part = projects.alpha.uploads.parts.create(alpha_objects.upload, data=b"0123456789")
    assert part.upload_id == alpha_objects.upload


def test_other_project_cannot_use_part_ids(projects: Projects) -> None:
    alpha, beta = projects.alpha, projects.beta
    upload_a = alpha.uploads.create(filename="a.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    part = alpha.uploads.parts.create(upload_a.id, data=b"abc")
    upload_b = beta.uploads.create(filename="b.txt", purpose="user_data", bytes=3, mime_type="text/plain")
    with pytest.raises(openai.BadRequestError) as info:
        beta.uploads.complete(upload_b.id, part_ids=[part.id])
    assert info.value.param == "part_ids"


def test_listings_are_per_project(projects: Projects, alpha_objects: AlphaObjects) -> None:
    beta = projects.beta
    own_file = upload_input(beta, [chat_line("beta-1")])
    file_ids = {f.id for f in beta.files.list()}
    assert own_file in file_ids
    assert not file_ids & {alpha_objects.input_file, alpha_objects.output_file, alpha_objects.error_file}
    batch_ids = {b.id for b in beta.batches.list(limit=100)}
    assert not batch_ids & {alpha_objects.batch, alpha_objects.running_batch}


def test_foreign_input_file_fails_the_batch(projects: Projects, alpha_objects: AlphaObjects) -> None:
    beta = projects.beta
    batch = beta.batches.create(
        input_file_id=alpha_objects.input_file, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for_batch(beta, batch.id)
    assert done.status == "failed"
    assert done.errors is not None
    assert [(e.code, e.param, e.line) for e in done.errors.data] == [("invalid_request", "file_id", None)]


def test_beta_batch_runs(projects: Projects) -> None:
    beta = projects.beta
    done = wait_for_batch(beta, submit_batch(beta, [chat_line("beta-run")]).id)
    assert done.status == "completed"
    assert beta.files.retrieve(done.output_file_id or "").purpose == "batch_output"
    with pytest.raises(openai.NotFoundError):
        projects.alpha.files.content(done.output_file_id or "")


def test_cleanup_running_batch(projects: Projects, alpha_objects: AlphaObjects) -> None:
    projects.alpha.batches.cancel(alpha_objects.running_batch)
    assert wait_for_batch(projects.alpha, alpha_objects.running_batch).status == "cancelled"


def test_no_keys_any_bearer_works(server: BatchgateServer, client: OpenAI) -> None:
    assert client.files.list().data is not None
    response = raw_json(server.base_url, "POST", "/batches", {}, api_key="anything")
    assert response.status == 400  # past auth, into validation


def test_refuses_non_loopback_without_keys(tmp_path: Path) -> None:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "batchgate",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "d"),
        "--upstream",
        "http://127.0.0.1:9/v1",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=base_env(), check=False)
    assert result.returncode != 0


def test_first_key_created_while_running_turns_auth_on(server_factory: Any) -> None:
    server = server_factory()
    assert raw(server.base_url, "GET", "/files", api_key="anything").status == 200
    key = create_key(server.data_dir, "late")
    assert_envelope(raw(server.base_url, "GET", "/files", api_key="anything"), 401)
    assert_envelope(raw(server.base_url, "GET", "/files", api_key=None), 401)
    assert raw(server.base_url, "GET", "/files", api_key=key).status == 200
