"""Anthropic Messages <-> OpenAI chat completions (domain/messages.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from batchgate.domain.messages import MessagesError, error_from_answer, error_type, to_chat, to_message


def params(**more: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **more}


def chat_answer(content: Any = "hello", finish: str = "stop", **choice: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "m-served",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish,
                         **choice}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def test_the_plain_request() -> None:
    assert to_chat(params()) == {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def test_system_as_a_string_or_blocks_comes_first() -> None:
    assert to_chat(params(system="be brief"))["messages"][0] == {"role": "system", "content": "be brief"}
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}]
    assert to_chat(params(system=blocks))["messages"][0] == {"role": "system", "content": "a\n\nb"}
    assert to_chat(params(system=""))["messages"] == [{"role": "user", "content": "hi"}]


def test_text_blocks_flatten_and_images_become_image_url_parts() -> None:
    text = [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}]}]
    assert to_chat(params(messages=text))["messages"] == [{"role": "user", "content": "x\n\ny"}]
    mixed = [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.invalid/cat.png"}},
        {"type": "text", "text": "what is it?"},
    ]}]
    assert to_chat(params(messages=mixed))["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.png"}},
        {"type": "text", "text": "what is it?"},
    ]}]


def test_sampling_stops_and_user() -> None:
    chat = to_chat(params(stop_sequences=["END"], temperature=0.2, top_p=0.9, top_k=40,
                          metadata={"user_id": "u1"}))
    assert (chat["stop"], chat["temperature"], chat["top_p"], chat["top_k"], chat["user"]) == (["END"], 0.2, 0.9, 40,
                                                                                              "u1")
    assert "stop" not in to_chat(params(stop_sequences=[]))


def test_tools_tool_use_and_tool_results() -> None:
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}]
    conversation = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "checking"},
                                          {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"c": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                                     {"type": "text", "text": "and?"}]},
    ]
    chat = to_chat(params(tools=tools, tool_choice={"type": "tool", "name": "get_weather"}, messages=conversation))
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}, "description": "Weather"}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["messages"] == [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "checking", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": '{"c":1}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
        {"role": "user", "content": "and?"},
    ]
    assert to_chat(params(tool_choice={"type": "any"}))["tool_choice"] == "required"


@pytest.mark.parametrize(("bad", "says"), [
    ({"model": None}, "model: Field required"),
    ({"max_tokens": None}, "max_tokens: Field required"),
    ({"max_tokens": 0}, "max_tokens: Input should be a positive integer"),
    ({"messages": []}, "messages: List should have at least 1 item"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
     "messages.0.content.0: content block type 'document'"),
    ({"stream": True}, "stream"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"temperature": "hot"}, "temperature"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
])
def test_what_cannot_be_translated_names_its_field(bad: dict[str, Any], says: str) -> None:
    body = params(**bad)
    for k, v in bad.items():
        if v is None:
            del body[k]
    with pytest.raises(MessagesError, match=says.replace("(", r"\(")):
        to_chat(body)


def test_the_answer_as_a_message() -> None:
    msg = to_message(chat_answer(), params(), "msg_1")
    assert msg == {"id": "msg_1", "type": "message", "role": "assistant", "model": "m-served",
                   "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": 7, "output_tokens": 3}}


@pytest.mark.parametrize(("finish", "extra", "stops", "reason", "sequence"), [
    ("stop", {}, [], "end_turn", None),
    ("length", {}, [], "max_tokens", None),
    ("stop", {"stop_reason": "END"}, ["END"], "stop_sequence", "END"),
    ("stop", {"stop_reason": 128001}, ["END"], "end_turn", None),  # vLLM's stop token id: not a sequence
    ("tool_calls", {}, [], "tool_use", None),
    ("content_filter", {}, [], "refusal", None),
])
def test_stop_reasons(finish: str, extra: dict[str, Any], stops: list[str], reason: str, sequence: str | None) -> None:
    msg = to_message(chat_answer(finish=finish, **extra), params(stop_sequences=stops), "msg_1")
    assert (msg["stop_reason"], msg["stop_sequence"]) == (reason, sequence)


def test_tool_calls_become_tool_use_blocks() -> None:
    answer = chat_answer(content=None, finish="tool_calls")
    answer["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 2}'}}]
    msg = to_message(answer, params(), "msg_1")
    assert msg["content"] == [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 2}}]
    assert msg["stop_reason"] == "tool_use"


def test_an_answer_without_choices_is_refused() -> None:
    with pytest.raises(MessagesError):
        to_message({"object": "list"}, params(), "msg_1")


@pytest.mark.parametrize(("status", "kind"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (413, "request_too_large"), (422, "invalid_request_error"), (429, "rate_limit_error"),
    (500, "api_error"), (502, "api_error"), (529, "overloaded_error"),
])
def test_error_types(status: int, kind: str) -> None:
    assert error_type(status) == kind


def test_upstream_errors_in_anthropic_shape() -> None:
    openai_envelope = orjson.dumps({"error": {"message": "bad model", "type": "invalid_request_error"}})
    assert error_from_answer(404, openai_envelope) == {
        "type": "error", "error": {"type": "not_found_error", "message": "bad model"}}
    already = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    assert error_from_answer(529, orjson.dumps(already)) == already
    assert error_from_answer(502, b"<html>bad gateway</html>")["error"] == {
        "type": "api_error", "message": "<html>bad gateway</html>"}
    assert error_from_answer(500, b"")["error"]["message"] == "The upstream answered HTTP 500."
