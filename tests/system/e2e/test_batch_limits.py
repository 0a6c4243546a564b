"""Per-batch limits are settings: OpenAI's figures by default in `serve`, lifted by default in `run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, run_cli
from helpers import CHAT, EMBEDDINGS, chat_line, embedding_line, jsonl, submit_batch, wait_for_batch
from openai import OpenAI

LOW = {
    "BATCHGATE_MAX_BATCH_REQUESTS": "3",
    "BATCHGATE_MAX_BATCH_FILE_BYTES": "2000",
    "BATCHGATE_MAX_BATCH_EMBEDDING_INPUTS": "5",
}


@pytest.fixture(scope="module")
def low(module_server_factory: Any) -> OpenAI:
    """A server with every per-batch limit set low (its clients are closed when it stops)."""
    return module_server_factory(env=LOW).client()  # type: ignore[no-any-return]


def errors(client: OpenAI, lines: list[Any], endpoint: str = CHAT) -> list[tuple[str | None, str | None]]:
    batch = wait_for_batch(client, submit_batch(client, lines, endpoint=endpoint).id)
    if batch.status != "failed":
        assert batch.status == "completed", batch
        return []
    assert batch.errors is not None
    return [(e.code, e.message) for e in batch.errors.data or []]


def test_serve_refuses_a_batch_over_the_configured_request_limit(low: OpenAI) -> None:
    assert errors(low, [chat_line(f"r{i}") for i in range(4)]) == [
        ("too_many_tasks", "The batch input file contains 4 requests; the limit is 3 requests per batch.")
    ]
    assert errors(low, [chat_line(f"r{i}") for i in range(3)]) == []  # at the limit: accepted


def test_serve_refuses_a_file_over_the_configured_size(low: OpenAI) -> None:
    lines = [chat_line(f"r{i}", "x" * 900) for i in range(3)]
    assert len(jsonl(lines)) > 2000
    found = errors(low, lines)
    assert [code for code, _ in found] == ["file_too_large"]
    assert "larger than the 2000 maximum" in (found[0][1] or "")


def test_serve_refuses_embedding_inputs_over_the_configured_limit(low: OpenAI) -> None:
    lines = [embedding_line("e1", ["a", "b", "c"]), embedding_line("e2", ["d", "e", "f"])]
    assert errors(low, lines, EMBEDDINGS) == [
        ("too_many_tasks", "The batch contains 6 embedding inputs; the limit is 5 per batch.")
    ]
    assert errors(low, lines[:1], EMBEDDINGS) == []


def test_serve_takes_files_of_any_size_when_the_upload_limit_is_0(module_server_factory: Any) -> None:
    client = module_server_factory(env={"BATCHGATE_MAX_UPLOAD_BYTES": "0"}).client()
    f = client.files.create(file=("in.jsonl", jsonl([chat_line("r0")])), purpose="batch")
    assert f.bytes > 0


def read_ids(path: Path) -> set[str]:
    return {json.loads(line)["custom_id"] for line in path.read_text().splitlines() if line.strip()}


def test_run_lifts_openai_limits(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    # 50,002 embedding inputs: over OpenAI's 50,000, which `serve` keeps by default.
    lines = [embedding_line(f"e{i}", ["a"] * 25_001, dimensions=1) for i in range(2)]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(jsonl(lines))
    result = run_cli(["run", str(src), "-o", str(out), "--upstream", fake_upstream.base_url])
    assert result.returncode == 0, result.stderr
    assert read_ids(out) == {"e0", "e1"}


def test_run_honours_a_limit_set_in_the_environment(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(jsonl([chat_line(f"r{i}") for i in range(4)]))
    argv = ["run", str(src), "-o", str(out), "--upstream", fake_upstream.base_url]
    result = run_cli(argv, env={"BATCHGATE_MAX_BATCH_REQUESTS": "3"})
    assert result.returncode != 0
    said = " ".join(result.stderr.split())  # the console wraps long lines
    assert "too_many_tasks The batch input file contains 4 requests; the limit is 3 requests per batch." in said
    assert run_cli(argv, env={"BATCHGATE_MAX_BATCH_REQUESTS": "4"}).returncode == 0
