"""Anthropic's Messages API in terms of OpenAI's Chat Completions, both ways. Pure: dicts in, dicts out.

A Message Batch line runs against an upstream's own `/v1/messages` where the route says it serves one (vLLM and
llama.cpp's server do); everywhere else, and in the local engine, its `params` become a chat completion request
(`to_chat`) and the answer becomes a Message (`to_message`). Errors become Anthropic's error body (`error_body`).
"""

from __future__ import annotations

from typing import Any

import orjson

from batchgate.domain.json_types import json_type_name

MESSAGES_ENDPOINT = "/v1/messages"

# Chat finish_reason -> Anthropic stop_reason ("stop" is end_turn unless a stop sequence ended the text).
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Anthropic's error type for each HTTP status it documents; other statuses take the type of their class.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
_SAMPLING = ("temperature", "top_p", "top_k")  # passed as they are (vLLM and llama.cpp take top_k)


class MessagesError(ValueError):
    """Message params that cannot be a chat completion request (Anthropic answers these with a 400)."""


def error_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status."""
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error envelope."""
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def error_from_answer(status: int, body: bytes) -> dict[str, Any]:
    """An upstream's non-2xx answer as Anthropic's error body: kept when it already is one, else the message of
    an OpenAI envelope (or the text itself) under the type of the status."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        if parsed.get("type") == "error" and isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return parsed
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return error_body(status, inner["message"])
        if isinstance(inner, str):
            return error_body(status, inner)
        if isinstance(parsed.get("message"), str):
            return error_body(status, parsed["message"])
    text = body.decode("utf-8", "replace").strip()[:1000]
    return error_body(status, text or f"The upstream answered HTTP {status}.")


# -- request: Messages params -> chat completion body ------------------------------------------------------------


def to_chat(params: dict[str, Any]) -> dict[str, Any]:
    """The chat completion request for Messages `params`. Raises MessagesError naming the bad field."""
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise MessagesError("model: Field required" if model is None else "model: Input should be a valid string")
    max_tokens = params.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise MessagesError("max_tokens: Field required" if max_tokens is None
                            else "max_tokens: Input should be a positive integer")
    if params.get("stream") is True:
        raise MessagesError("stream: Streaming is not supported in the Message Batches API.")
    chat: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": _chat_messages(params)}
    stops = params.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise MessagesError("stop_sequences: Input should be a valid list of strings")
        if stops:
            chat["stop"] = stops
    for name in _SAMPLING:
        value = params.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MessagesError(f"{name}: Input should be a valid number")
            chat[name] = value
    meta = params.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
        chat["user"] = meta["user_id"]
    tools = params.get("tools")
    if tools:
        chat["tools"] = [_chat_tool(i, t) for i, t in enumerate(_list(tools, "tools"))]
    choice = params.get("tool_choice")
    if choice is not None:
        chat["tool_choice"] = _chat_tool_choice(choice)
    return chat


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MessagesError(f"{where}: Input should be a valid list, not {json_type_name(value)}")
    return value


def _chat_messages(params: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = params.get("system")
    if system is not None:
        text = system if isinstance(system, str) else _text_of(_list(system, "system"), "system")
        if text:
            out.append({"role": "system", "content": text})
    messages = params.get("messages")
    if messages is None:
        raise MessagesError("messages: Field required")
    if not _list(messages, "messages"):
        raise MessagesError("messages: List should have at least 1 item")
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(m, dict):
            raise MessagesError(f"{where}: Input should be a valid object")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise MessagesError(f"{where}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        else:
            out.extend(_from_blocks(role, _list(content, f"{where}.content"), where))
    return out


def _text_of(blocks: list[Any], where: str) -> str:
    texts = []
    for j, b in enumerate(blocks):
        if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
            raise MessagesError(f"{where}.{j}: Input should be a text block")
        texts.append(b["text"])
    return "\n\n".join(texts)


def _from_blocks(role: str, blocks: list[Any], where: str) -> list[dict[str, Any]]:
    """One Anthropic message's content blocks as chat messages: the content parts (text, images), the assistant's
    tool calls, and each tool result as a `tool` message (which must come before the user's text)."""
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, b in enumerate(blocks):
        at = f"{where}.content.{j}"
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text" and isinstance(b.get("text"), str):
            parts.append({"type": "text", "text": b["text"]})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(b.get("source"), at)}})
        elif kind == "tool_use" and role == "assistant":
            args = orjson.dumps(b.get("input", {})).decode()
            calls.append({"id": str(b.get("id", "")), "type": "function",
                          "function": {"name": str(b.get("name", "")), "arguments": args}})
        elif kind == "tool_result" and role == "user":
            content = b.get("content", "")
            text = content if isinstance(content, str) else _text_of(_list(content, f"{at}.content"), at)
            results.append({"role": "tool", "tool_call_id": str(b.get("tool_use_id", "")), "content": text})
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # earlier reasoning: an OpenAI-compatible server takes no such part
        else:
            raise MessagesError(f"{at}: content block type {kind!r} is not supported here")
    out = list(results)
    if parts or not (calls or results):
        all_text = all(p["type"] == "text" for p in parts)
        out.append({"role": role, "content": "\n\n".join(p["text"] for p in parts) if all_text else parts})
    if calls:
        if out and out[-1]["role"] == "assistant":
            out[-1]["tool_calls"] = calls
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": calls})
    return out


def _image_url(source: Any, where: str) -> str:
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise MessagesError(f"{where}.source: an image source is a base64 or url source")


def _chat_tool(i: int, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise MessagesError(f"tools.{i}: a tool needs a name")
    fn: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if isinstance(tool.get("description"), str):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _chat_tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise MessagesError("tool_choice: Input should be auto, any, tool or none")


# -- answer: chat completion -> Message ---------------------------------------------------------------------------


def to_message(chat: Any, params: dict[str, Any], message_id: str) -> dict[str, Any]:
    """The Message for a chat completion answered to `to_chat(params)`. Raises MessagesError if `chat` is not a
    chat completion."""
    choices = chat.get("choices") if isinstance(chat, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MessagesError("The upstream's answer has no choices.")
    choice = choices[0]
    msg: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    content: list[dict[str, Any]] = []
    text = msg.get("content")
    if isinstance(text, str) and (text or not msg.get("tool_calls")):
        content.append({"type": "text", "text": text})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            content.append({"type": "tool_use", "id": str(call.get("id") or ""), "name": str(fn.get("name", "")),
                            "input": _arguments(fn.get("arguments"))})
    stop_reason, stop_sequence = _stop(choice, params)
    usage: dict[str, Any] = chat["usage"] if isinstance(chat.get("usage"), dict) else {}
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": chat.get("model") if isinstance(chat.get("model"), str) else params.get("model"),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {
            "input_tokens": _int(usage.get("prompt_tokens")),
            "output_tokens": _int(usage.get("completion_tokens")),
        },
    }


def _stop(choice: dict[str, Any], params: dict[str, Any]) -> tuple[str, str | None]:
    reason = choice.get("finish_reason")
    stops = params.get("stop_sequences") or ()
    matched = choice.get("stop_reason")  # vLLM (and echo) say which stop string ended the text
    if reason == "stop" and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    return _STOP_REASONS.get(reason if isinstance(reason, str) else "", "end_turn"), None


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {"_raw": raw}
    return raw if isinstance(raw, dict) else {}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
