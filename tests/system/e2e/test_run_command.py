"""`batchgate run INPUT -o OUTPUT --errors ERRORS --upstream URL`: one-shot execution of a batch file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream, run_cli
from helpers import EMBEDDINGS, chat_line, embedding_line, jsonl


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))  # not the user's ~/.local/state


def read(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    result = {line["custom_id"]: line for line in lines}
    assert len(result) == len(lines), "a custom_id was written twice"
    return result


def test_run_chat_file(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    error = {"error": {"message": "nope", "type": "invalid_request_error", "param": None, "code": None}}
    lines = [chat_line(f"ok-{i}") for i in range(5)]
    lines.append(chat_line("flaky", x_fake={"fail_times": 1, "status": 500, "key": "flaky"}))
    lines.append(chat_line("bad", x_fake={"status": 400, "body": error, "key": "bad"}))
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_bytes(jsonl(lines))

    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url])
    assert result.returncode == 0, result.stdout + result.stderr

    outputs, errors = read(out), read(err)
    assert set(outputs) == {f"ok-{i}" for i in range(5)} | {"flaky"}
    assert set(errors) == {"bad"}
    for cid, line in outputs.items():
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["body"]["choices"][0]["message"]["content"] == f"echo: {cid}"
    assert errors["bad"]["response"]["status_code"] == 400
    assert errors["bad"]["response"]["body"] == error
    assert errors["bad"]["error"] is None
    stats = fake.stats()
    assert stats["by_key"]["flaky"] == 2
    assert stats["by_key"]["bad"] == 1
    assert stats["total"] == 8


def test_run_embeddings_file(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_bytes(jsonl([embedding_line(f"e{i}", [f"text {i}", "more"]) for i in range(4)]))
    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url])
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = read(out)
    assert set(outputs) == {f"e{i}" for i in range(4)}
    assert all(len(line["response"]["body"]["data"]) == 2 for line in outputs.values())
    assert not err.exists() or read(err) == {}
    assert fake.stats()["by_path"] == {EMBEDDINGS.removeprefix("/v1/"): 4}


def test_run_rejects_invalid_file(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(jsonl([chat_line("a"), "{not json"]))
    result = run_cli(["run", str(src), "-o", str(out), "--upstream", fake.base_url])
    assert result.returncode != 0
    assert fake.stats()["total"] == 0  # validation happens before anything is sent


def test_run_upstream_api_key(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_bytes(jsonl([chat_line("a")]))
    result = run_cli(
        ["run", str(src), "-o", str(out), "--upstream", fake.base_url],
        env={"BATCHGATE_UPSTREAM_API_KEY": "sk-run"},
    )
    assert result.returncode == 0, result.stderr
    assert set(read(out)) == {"a"}
    assert fake.stats()["auth"] == {"Bearer sk-run": 1}


def test_run_that_expires_writes_what_it_has_and_exits_1(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    fake.control(latency=0.2)
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_bytes(jsonl([chat_line(f"c{i}") for i in range(30)]))
    result = run_cli(  # the 7-day window scaled to a second; 2 requests at a time need 3 s
        ["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url],
        env={"BATCHGATE_WINDOW_SCALE": "0.000002", "BATCHGATE_UPSTREAM_CONCURRENCY": "2"},
    )
    assert result.returncode == 1, result.stderr
    assert "expired:" in result.stderr
    outputs, errors = read(out), read(err)
    assert set(outputs) | set(errors) == {f"c{i}" for i in range(30)}
    assert errors and all(line["error"]["code"] == "batch_expired" for line in errors.values())


BAD_REQUEST = {"error": {"message": "no such model", "type": "invalid_request_error", "param": "model",
                         "code": "model_not_found"}}


def test_run_where_no_line_succeeds_exits_3(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    src.write_bytes(jsonl([chat_line(f"c{i}", x_fake={"status": 400, "body": BAD_REQUEST}) for i in range(20)]))
    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "completed: 0 succeeded, 20 failed" in result.stderr
    assert set(read(err)) == {f"c{i}" for i in range(20)}
    assert not out.exists() or read(out) == {}


def test_run_where_one_line_succeeds_exits_0(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake: FakeUpstream = fake_upstream_factory()
    src, out, err = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    lines = [chat_line(f"c{i}", x_fake={"status": 400, "body": BAD_REQUEST}) for i in range(19)]
    src.write_bytes(jsonl([*lines, chat_line("ok")]))
    result = run_cli(["run", str(src), "-o", str(out), "--errors", str(err), "--upstream", fake.base_url])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "completed: 1 succeeded, 19 failed" in result.stderr
    assert set(read(out)) == {"ok"}
    assert len(read(err)) == 19
