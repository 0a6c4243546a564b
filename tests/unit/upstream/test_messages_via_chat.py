"""Answering Anthropic Messages through a chat completions endpoint (upstream/messages.py), with the send function
an executor gives it replaced by a function that answers like a server would."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from batchgate.upstream.executor import UpstreamResponse
from batchgate.upstream.messages import via_chat

PARAMS = {"model": "m", "max_tokens": 8, "system": "s", "messages": [{"role": "user", "content": "hi"}]}


class Server:
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, endpoint: str, body: dict[str, Any], timeout: float) -> UpstreamResponse:
        self.sent.append((endpoint, body))
        raw = self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)
        return UpstreamResponse(self.status, raw, "req_abc", 2.0 if self.status == 429 else None)


def answer(server: Server, params: dict[str, Any] = PARAMS) -> tuple[UpstreamResponse, Any]:
    resp = asyncio.run(via_chat(server.send, params, 5.0))
    return resp, orjson.loads(resp.body)


def test_a_chat_completion_becomes_a_message() -> None:
    server = Server(200, {"model": "m", "choices": [{"message": {"content": "yo"}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 2, "completion_tokens": 1}})
    resp, body = answer(server)
    assert server.sent == [("/v1/chat/completions", {"model": "m", "max_tokens": 8, "messages": [
        {"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]})]
    assert resp.status == 200 and resp.request_id == "req_abc"
    assert body["id"] == "msg_abc" and body["content"] == [{"type": "text", "text": "yo"}]


def test_params_that_cannot_be_translated_never_reach_the_server() -> None:
    server = Server(200, {})
    resp, body = answer(server, {**PARAMS, "messages": [{"role": "user", "content": [{"type": "document"}]}]})
    assert server.sent == [] and resp.status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_an_error_keeps_its_status_and_retry_after_in_anthropic_shape() -> None:
    resp, body = answer(Server(429, {"error": {"message": "slow down", "type": "rate_limit"}}))
    assert (resp.status, resp.retry_after) == (429, 2.0)
    assert body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}


def test_a_2xx_that_is_not_a_chat_completion_is_an_upstream_fault() -> None:
    resp, body = answer(Server(200, {"object": "list", "data": []}))
    assert resp.status == 502 and body["error"]["type"] == "api_error"
    resp, _ = answer(Server(200, b"not json"))
    assert resp.status == 502
