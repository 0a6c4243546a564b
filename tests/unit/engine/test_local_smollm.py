"""SmolLM2-135M-Instruct on llama.cpp: OpenAI shapes, sampling parameters, slots, timeouts."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from batchgate.engine import registry
from batchgate.upstream.executor import TransportError

from .conftest import Local
from .support import assert_error, needs

pytestmark = [pytest.mark.local_models, needs(registry.SMOLLM)]

CHAT = "/v1/chat/completions"
MODEL = "SmolLM2-135M-Instruct"


def chat(content: str = "What is the capital of France?", **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 16, **fields}


def test_chat_completion_shape_and_real_usage(local: Local) -> None:
    from openai.types.chat import ChatCompletion

    status, body = local.send(CHAT, chat())
    assert status == 200, body
    ChatCompletion.model_validate(body)
    assert body["model"] == MODEL
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["message"]["refusal"] is None
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    # The chat template wraps the question, so the prompt is longer than its 7 words.
    assert usage["prompt_tokens"] > 7
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "timings" not in body


def test_max_tokens_ends_with_length(local: Local) -> None:
    _, body = local.send(CHAT, chat("Write a long story about a dragon.", max_tokens=5))
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5


def test_n_choices_decode_in_parallel_and_count_every_token(local: Local) -> None:
    _, body = local.send(CHAT, chat("Write a long story about a dragon.", n=3, max_tokens=8, seed=11))
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert [c["finish_reason"] for c in body["choices"]] == ["length"] * 3
    assert body["usage"]["completion_tokens"] == 24
    # seed + i per choice: the choices are not three copies of one sample.
    assert len({c["message"]["content"] for c in body["choices"]}) > 1


def test_same_seed_same_text(local: Local) -> None:
    request = chat("Name a colour.", seed=1234, temperature=0.9, top_p=0.9)
    _, first = local.send(CHAT, request)
    _, second = local.send(CHAT, request)
    assert first["choices"][0]["message"] == second["choices"][0]["message"]


def test_stop_sequence_cuts_the_greedy_answer(local: Local) -> None:
    request = chat("List three fruits, separated by commas.", max_tokens=32, temperature=0)
    _, whole = local.send(CHAT, request)
    _, cut = local.send(CHAT, {**request, "stop": ["\n"]})
    text = whole["choices"][0]["message"]["content"]
    assert "\n" in text  # the greedy answer is a numbered list
    assert cut["choices"][0]["message"]["content"] == text.split("\n")[0]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["usage"]["completion_tokens"] < whole["usage"]["completion_tokens"]


def test_completions_endpoint(local: Local) -> None:
    status, body = local.send(
        "/v1/completions",
        {"model": "smollm2-135m-instruct", "prompt": ["Once upon a time", "The sky"], "max_tokens": 6},
    )
    assert status == 200, body
    assert body["object"] == "text_completion"
    assert body["model"] == MODEL
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["finish_reason"] for c in body["choices"]] == ["length"] * 2
    assert body["usage"]["completion_tokens"] == 12


def test_concurrent_requests_all_answer(local: Local) -> None:
    async def many() -> list[int]:
        responses = await asyncio.gather(
            *(local.engine.send(CHAT, chat(f"Say a word about {i}.", max_tokens=8), 120.0) for i in range(10))
        )
        return [r.status for r in responses]

    assert local.run(many()) == [200] * 10


def test_a_prompt_longer_than_the_slot_context_is_400(local: Local) -> None:
    status, body = local.send(CHAT, chat("hello " * 5000))
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"


def test_bad_parameters_are_refused_before_the_model_runs(local: Local) -> None:
    status, body = local.send(CHAT, chat(temperature=-1))
    assert_error(status, body, 400, "temperature")


def test_timeout_raises_transport_error(local: Local) -> None:
    with pytest.raises(TransportError) as caught:
        local.run(local.engine.send(CHAT, chat("Write a long essay.", max_tokens=400), 0.05))
    assert caught.value.kind == "timeout"
    # The engine keeps answering afterwards.
    status, _ = local.send(CHAT, chat(max_tokens=2))
    assert status == 200


def test_listed_and_checked(local: Local) -> None:
    assert MODEL in local.engine.list_models()
    local.engine.check_model("smollm2-135m-instruct")
    response = local.run(local.engine.send(CHAT, chat(max_tokens=1), 30.0))
    assert json.loads(response.body)["usage"]["completion_tokens"] == 1
