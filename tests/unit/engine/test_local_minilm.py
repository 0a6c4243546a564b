"""all-MiniLM-L6-v2 (int8 ONNX) against fp32 sentence-transformers reference vectors."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest

from batchgate.engine import registry

from .conftest import Local
from .support import assert_error, needs

pytestmark = [pytest.mark.local_models, needs(registry.MINILM)]

EMBEDDINGS = "/v1/embeddings"
REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text("utf-8"))
MIN_COSINE = 0.998


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_vectors_match_sentence_transformers(local: Local) -> None:
    texts = [item["text"] for item in REFERENCE["items"]]
    status, body = local.send(EMBEDDINGS, {"model": "all-MiniLM-L6-v2", "input": texts})
    assert status == 200, body
    assert body["model"] == "all-MiniLM-L6-v2"
    vectors = [d["embedding"] for d in body["data"]]
    assert all(len(v) == 384 for v in vectors)
    cosines = [cosine(v, item["embedding"]) for v, item in zip(vectors, REFERENCE["items"], strict=True)]
    worst = min(range(len(cosines)), key=cosines.__getitem__)
    assert cosines[worst] >= MIN_COSINE, (texts[worst], cosines[worst])
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(texts)


def test_concurrent_single_input_requests_give_the_same_vectors(local: Local) -> None:
    items = REFERENCE["items"][:12]

    async def one(text: str) -> list[float]:
        response = await local.engine.send(
            EMBEDDINGS, {"model": "sentence-transformers/all-MiniLM-L6-v2", "input": text}, 60.0
        )
        assert response.status == 200
        embedding: list[float] = json.loads(response.body)["data"][0]["embedding"]
        return embedding

    async def all_at_once() -> list[list[float]]:
        return list(await asyncio.gather(*(one(item["text"]) for item in items)))

    vectors = local.run(all_at_once())
    for vector, item in zip(vectors, items, strict=True):
        assert cosine(vector, item["embedding"]) >= MIN_COSINE


def test_base64_encoding(local: Local) -> None:
    item = REFERENCE["items"][0]
    status, body = local.send(
        EMBEDDINGS, {"model": "all-MiniLM-L6-v2", "input": item["text"], "encoding_format": "base64"}
    )
    assert status == 200
    vector = list(struct.unpack("<384f", base64.b64decode(body["data"][0]["embedding"])))
    assert cosine(vector, item["embedding"]) >= MIN_COSINE


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": "x", "dimensions": 128}, "dimensions"),
        ({"input": [101, 2023]}, "input"),
        ({"input": ""}, "input"),
    ],
)
def test_requests_this_model_cannot_answer_are_400(local: Local, fields: dict[str, Any], param: str) -> None:
    status, answer = local.send(EMBEDDINGS, {"model": "all-MiniLM-L6-v2", **fields})
    assert_error(status, answer, 400, param)


def test_listed_and_checked(local: Local) -> None:
    assert "all-MiniLM-L6-v2" in local.engine.list_models()
    local.engine.check_model("sentence-transformers/all-MiniLM-L6-v2")
