"""Routing models to upstreams with a TOML config, and forwarding the upstream API key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import BatchgateServer, FakeUpstream, free_port, run_cli
from helpers import (
    EMBEDDINGS,
    assert_exactly_once,
    chat_line,
    embedding_line,
    jsonl,
    run_batch,
    submit_batch,
    unique,
    wait_for_batch,
)
from openai import OpenAI


@dataclass
class Routed:
    server: BatchgateServer
    a: FakeUpstream
    b: FakeUpstream
    client: OpenAI


@pytest.fixture(scope="module")
def routed(module_server_factory: Any, module_fake_factory: Any, tmp_path_factory: Any) -> Iterator[Routed]:
    a, b = module_fake_factory(), module_fake_factory()
    config: Path = tmp_path_factory.mktemp("routing") / "batchgate.toml"
    config.write_text(
        f"""
[[upstreams]]
name = "a"
url = "{a.base_url}"
api_key = "sk-a"
models = ["gpt-4o-mini", "llama-*"]

[[upstreams]]
name = "b"
url = "{b.base_url}"
api_key = "sk-b"
models = ["text-embedding-*"]
max_concurrency = 2
"""
    )
    server = module_server_factory(upstream=None, args=["--config", str(config)])
    yield Routed(server, a, b, server.client())


@pytest.fixture
def fresh(routed: Routed) -> Routed:
    routed.a.reset()
    routed.b.reset()
    return routed


@pytest.mark.parametrize("model", ["gpt-4o-mini", "llama-3.1-8b", "llama-"])
def test_chat_models_go_to_a(fresh: Routed, model: str) -> None:
    ids = [unique("a") for _ in range(4)]
    batch = run_batch(fresh.client, [chat_line(c, model=model) for c in ids])
    assert batch.status == "completed", batch
    assert batch.model == model
    assert_exactly_once(fresh.client, batch, ids)
    a, b = fresh.a.stats(), fresh.b.stats()
    assert a["total"] == 4
    assert a["auth"] == {"Bearer sk-a": 4}
    assert a["models"] == {model: 4}
    assert b["total"] == 0


def test_embeddings_go_to_b_with_its_concurrency_limit(fresh: Routed) -> None:
    fresh.b.control(latency=0.2)
    ids = [unique("b") for _ in range(12)]
    batch = run_batch(fresh.client, [embedding_line(c) for c in ids], endpoint=EMBEDDINGS)
    assert batch.status == "completed", batch
    assert_exactly_once(fresh.client, batch, ids)
    b = fresh.b.stats()
    assert b["total"] == 12
    assert b["auth"] == {"Bearer sk-b": 12}
    assert b["max_in_flight"] == 2
    assert fresh.a.stats()["total"] == 0


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini-2024-07-18", "mistral-7b", "LLAMA-3"])
def test_unrouted_model_fails_validation(fresh: Routed, model: str) -> None:
    lines = [chat_line("m1", model=model), chat_line("m2", model=model)]
    batch = wait_for_batch(fresh.client, submit_batch(fresh.client, lines).id)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert [(e.code, e.param, e.line) for e in batch.errors.data] == [
        ("model_not_found", "body.model", 1),
        ("model_not_found", "body.model", 2),
    ]
    assert model in (batch.errors.data[0].message or "")
    assert fresh.a.stats()["total"] == 0 and fresh.b.stats()["total"] == 0


def test_models_endpoint_lists_configured_models(fresh: Routed) -> None:
    ids = [m.id for m in fresh.client.models.list().data]
    assert "gpt-4o-mini" in ids
    assert all(isinstance(i, str) for i in ids)


def test_upstream_api_key_flag(server_factory: Any, fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    server = server_factory(upstream=fake.base_url, args=["--upstream-api-key", "sk-flag"])
    client = server.client()
    batch = run_batch(client, [chat_line(unique("key"))])
    assert batch.status == "completed"
    assert fake.stats()["auth"] == {"Bearer sk-flag": 1}


def test_settings_from_environment(server_factory: Any, fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    server = server_factory(
        upstream=None, env={"BATCHGATE_UPSTREAM": fake.base_url, "BATCHGATE_UPSTREAM_API_KEY": "sk-env"}
    )
    client = server.client()
    batch = run_batch(client, [chat_line(unique("env"))])
    assert batch.status == "completed"
    assert fake.stats()["auth"] == {"Bearer sk-env": 1}


def test_upstream_concurrency_setting(server_factory: Any, fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    fake.control(latency=0.2)
    server = server_factory(upstream=fake.base_url, env={"BATCHGATE_UPSTREAM_CONCURRENCY": "3"})
    client = server.client()
    ids = [unique("conc") for _ in range(15)]
    batch = run_batch(client, [chat_line(c) for c in ids])
    assert_exactly_once(client, batch, ids)
    assert fake.stats()["max_in_flight"] == 3


def test_serve_configured_only_by_environment(tmp_path: Path, fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    server = BatchgateServer(tmp_path / "envdata", upstream=fake.base_url, env_only=True)
    try:
        server.start()
        client = server.client()
        batch = run_batch(client, [chat_line(unique("envonly"))])
        assert batch.status == "completed"
        assert fake.stats()["total"] == 1
        assert any((tmp_path / "envdata").iterdir())  # the data dir came from BATCHGATE_DATA_DIR
    finally:
        server.stop()


def test_config_file_from_environment(tmp_path: Path, server_factory: Any, fake_upstream_factory: Any) -> None:
    fake = fake_upstream_factory()
    config = tmp_path / "c.toml"
    config.write_text(f'[[upstreams]]\nname = "only"\nurl = "{fake.base_url}"\nmodels = ["env-*"]\n')
    server = server_factory(upstream=None, env={"BATCHGATE_CONFIG": str(config)})
    client = server.client()
    ok = run_batch(client, [chat_line(unique("cfg"), model="env-model")])
    assert ok.status == "completed"
    bad = run_batch(client, [chat_line(unique("cfg"), model="other-model")])
    assert bad.status == "failed"
    assert bad.errors is not None
    assert [e.code for e in bad.errors.data] == ["model_not_found"]


def test_a_bad_routing_file_stops_every_command_with_one_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[upstreams]]\nname = "gpu-a"\nurl = "http://127.0.0.1:9/v1"\nmax_concurency = 8\n\n'
                      '[[upstreams]]\nname = "gpu-b"\nurl = "http://127.0.0.1:9/v1"\napi_key_env = "BG_TEST_UNSET"\n')
    problems = [
        f"{config}: 2 problems:",
        "  upstreams[0] ('gpu-a'): unknown key 'max_concurency' (did you mean 'max_concurrency'?)",
        "  upstreams[1] ('gpu-b'): api_key_env: environment variable BG_TEST_UNSET is not set: every request would "
        "go without its key",
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([chat_line("a")]))
    state_home = tmp_path / "state"
    for command, code, prefix in [
        (["serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "serve")], 1, "Error: "),
        (["worker", "--data-dir", str(tmp_path / "worker")], 1, "Error: "),
        (["run", str(src), "-o", str(tmp_path / "out.jsonl")], 2, "error: "),
    ]:
        result = run_cli([*command, "--config", str(config)], env={"XDG_STATE_HOME": str(state_home)})
        assert result.returncode == code, (command, result.stdout + result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines() == [prefix + problems[0], *problems[1:]], command
    assert not state_home.exists()  # `run` refused before it made a state directory
    assert not (tmp_path / "out.jsonl").exists()
