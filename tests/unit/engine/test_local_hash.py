"""`hash` embeddings: deterministic unit vectors, `dimensions`, base64, OpenAI's list shape."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import pytest

from batchgate.engine.hashembed import hash_vector

from .conftest import Local
from .support import assert_error

EMBEDDINGS = "/v1/embeddings"


def embed(local: Local, **fields: Any) -> dict[str, Any]:
    status, body = local.send(EMBEDDINGS, {"model": "hash", **fields})
    assert status == 200, body
    return body


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_embedding_list_shape_and_defaults(local: Local) -> None:
    body = embed(local, input=["first text", "second one here"])
    assert body["object"] == "list"
    assert body["model"] == "hash"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    vectors = [d["embedding"] for d in body["data"]]
    assert [len(v) for v in vectors] == [384, 384]
    assert all(abs(norm(v) - 1.0) < 1e-9 for v in vectors)
    assert vectors[0] != vectors[1]
    assert body["usage"] == {"prompt_tokens": 5, "total_tokens": 5}


def test_same_text_same_vector_across_calls(local: Local) -> None:
    first = embed(local, input="stable")["data"][0]["embedding"]
    second = embed(local, input=["other", "stable"])["data"][1]["embedding"]
    assert first == second == hash_vector("stable")


def test_dimensions_truncates_and_renormalises(local: Local) -> None:
    short = embed(local, input="text", dimensions=8)["data"][0]["embedding"]
    full = hash_vector("text", 384)
    assert len(short) == 8
    assert abs(norm(short) - 1.0) < 1e-9
    scale = norm(full[:8])
    assert all(abs(s - f / scale) < 1e-9 for s, f in zip(short, full[:8], strict=True))


def test_base64_is_little_endian_float32(local: Local) -> None:
    encoded = embed(local, input="text", encoding_format="base64")["data"][0]["embedding"]
    decoded = struct.unpack("<384f", base64.b64decode(encoded))
    assert all(abs(d - f) < 1e-6 for d, f in zip(decoded, hash_vector("text"), strict=True))


def test_token_arrays_are_embedded_as_the_text_of_their_ints(local: Local) -> None:
    body = embed(local, input=[[1, 2, 3], "1 2 3"])
    assert body["data"][0]["embedding"] == body["data"][1]["embedding"]
    assert body["usage"]["prompt_tokens"] == 6
    single = embed(local, input=[7, 8])
    assert single["data"][0]["embedding"] == hash_vector("7 8")


def test_a_large_request_is_answered_in_order(local: Local) -> None:
    texts = [f"text {i}" for i in range(300)]
    body = embed(local, input=texts, dimensions=64)
    assert [d["index"] for d in body["data"]] == list(range(300))
    assert body["data"][299]["embedding"] == hash_vector("text 299", 64)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "input"),
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", 3.5]}, "input[1]"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": "8"}, "dimensions"),
        ({"input": ["x"] * 2049}, "input"),
    ],
)
def test_bad_embedding_requests_are_400(local: Local, fields: dict[str, Any], param: str) -> None:
    status, answer = local.send(EMBEDDINGS, {"model": "hash", **fields})
    assert_error(status, answer, 400, param)


def test_an_embeddings_model_refuses_chat(local: Local) -> None:
    status, answer = local.send("/v1/chat/completions", {"model": "hash", "messages": []})
    assert_error(status, answer, 400, "model")
