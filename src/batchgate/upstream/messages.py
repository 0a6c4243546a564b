"""Answering an Anthropic Messages request through a chat completions endpoint, for the executors that do not
serve `/v1/messages` themselves (`domain/messages.py` holds the translation; this sends it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import orjson

from batchgate import ids
from batchgate.domain.messages import MessagesError, error_body, error_from_answer, to_chat, to_message
from batchgate.upstream.executor import UpstreamResponse

MessagesMode = Literal["native", "translate"]
CHAT = "/v1/chat/completions"

Send = Callable[[str, dict[str, Any], float], Awaitable[UpstreamResponse]]


async def via_chat(send: Send, params: dict[str, Any], timeout: float) -> UpstreamResponse:
    """Answer Messages `params` by sending their chat completion through `send`; the answer is a Message, or
    Anthropic's error body with the upstream's status (400 for params that cannot be translated)."""
    try:
        chat = to_chat(params)
    except MessagesError as e:
        return UpstreamResponse(400, orjson.dumps(error_body(400, str(e))), ids.request_id())
    resp = await send(CHAT, chat, timeout)
    if not 200 <= resp.status < 300:
        return UpstreamResponse(resp.status, orjson.dumps(error_from_answer(resp.status, resp.body)),
                                resp.request_id, resp.retry_after)
    try:
        message = to_message(orjson.loads(resp.body), params, _message_id(resp.request_id))
    except (orjson.JSONDecodeError, MessagesError):
        # Not a chat completion: an upstream fault (a 5xx, so retried like one), never a "succeeded" Message.
        problem = f"The upstream answered {resp.status} to {CHAT} with a body that is not a chat completion."
        return UpstreamResponse(502, orjson.dumps(error_body(502, problem)), resp.request_id)
    return UpstreamResponse(resp.status, orjson.dumps(message), resp.request_id, resp.retry_after)


def _message_id(request_id: str | None) -> str:
    return "msg_" + (request_id.removeprefix("req_") if request_id else ids.request_id().removeprefix("req_"))
