"""`echo` through LocalEngine.send: OpenAI shapes, n / max_tokens / stop, and 4xx envelopes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Local
from .support import assert_error

CHAT = "/v1/chat/completions"


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "echo", "messages": [{"role": "user", "content": "hello there world"}], **fields}


def test_chat_completion_has_the_openai_shape(local: Local) -> None:
    status, body = local.send(
        CHAT,
        {
            "model": "echo",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "an answer"},
                {"role": "user", "content": "say this back"},
            ],
        },
    )
    assert status == 200
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "echo"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "say this back", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # Words are the echo model's tokens: 2 + 2 + 2 + 3 in, 3 out.
    assert body["usage"] == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def test_the_response_parses_with_the_openai_sdk_types(local: Local) -> None:
    from openai.types.chat import ChatCompletion

    _, body = local.send(CHAT, chat(n=2))
    parsed = ChatCompletion.model_validate(body)
    assert [c.message.content for c in parsed.choices] == ["hello there world"] * 2


def test_n_gives_n_choices_and_counts_their_tokens(local: Local) -> None:
    _, body = local.send(CHAT, chat(n=3))
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 9


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates_words_with_finish_reason_length(local: Local, field: str) -> None:
    _, body = local.send(CHAT, chat(**{field: 2}))
    assert body["choices"][0]["message"]["content"] == "hello there"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_stop_cuts_before_the_earliest_stop_sequence(local: Local) -> None:
    _, body = local.send(CHAT, chat(stop=["world", " there"]))
    assert body["choices"][0]["message"]["content"] == "hello"
    assert body["choices"][0]["finish_reason"] == "stop"


def test_text_content_parts_are_joined(local: Local) -> None:
    parts = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    _, body = local.send(CHAT, {"model": "echo", "messages": [{"role": "user", "content": parts}]})
    assert body["choices"][0]["message"]["content"] == "one\ntwo"


def test_completions_return_text_completion_per_prompt_then_per_n(local: Local) -> None:
    status, body = local.send("/v1/completions", {"model": "echo", "prompt": ["a b", "c"], "n": 2})
    assert status == 200
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert [(c["index"], c["text"]) for c in body["choices"]] == [(0, "a b"), (1, "a b"), (2, "c"), (3, "c")]
    assert body["choices"][0]["logprobs"] is None
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}


def test_endpoint_without_v1_prefix_is_accepted(local: Local) -> None:
    status, _ = local.send("/chat/completions", chat())
    assert status == 200


def test_echo_is_deterministic(local: Local) -> None:
    _, first = local.send(CHAT, chat(temperature=1.5, seed=3))
    _, second = local.send(CHAT, chat(temperature=1.5, seed=3))
    assert first["choices"] == second["choices"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo"}, "messages"),
        ({"model": "echo", "messages": []}, "messages"),
        ({"model": "echo", "messages": "hi"}, "messages"),
        ({"model": "echo", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "echo", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "echo", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
        (chat(n=0), "n"),
        (chat(n=True), "n"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(temperature=2.5), "temperature"),
        (chat(top_p="high"), "top_p"),
        (chat(stop=["a", "b", "c", "d", "e"]), "stop"),
        (chat(stop=5), "stop"),
        (chat(stream=True), "stream"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_bad_chat_requests_are_400_with_the_parameter_named(local: Local, body: dict[str, Any], param: str) -> None:
    status, answer = local.send(CHAT, body)
    assert_error(status, answer, 400, param)


def test_bad_completions_prompt_is_400(local: Local) -> None:
    status, answer = local.send("/v1/completions", {"model": "echo", "prompt": [{"x": 1}]})
    assert_error(status, answer, 400, "prompt[0]")


def test_unknown_model_is_404_model_not_found(local: Local) -> None:
    status, answer = local.send(CHAT, {**chat(), "model": "gpt-9"})
    assert_error(status, answer, 404, "model")
    assert answer["error"]["code"] == "model_not_found"


def test_unknown_endpoint_is_404(local: Local) -> None:
    status, answer = local.send("/v1/images/generations", chat())
    assert_error(status, answer, 404, None)
    assert answer["error"]["code"] == "unknown_url"


def test_a_chat_model_refuses_the_embeddings_endpoint(local: Local) -> None:
    status, answer = local.send("/v1/embeddings", {"model": "echo", "input": "x"})
    assert_error(status, answer, 400, "model")


def test_every_answer_has_a_request_id(local: Local) -> None:
    response = local.run(local.engine.send(CHAT, chat(), 5.0))
    assert response.request_id and response.request_id.startswith("req_")
