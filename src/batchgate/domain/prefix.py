"""A request's prompt-prefix key: requests with equal keys share a long common prefix (system prompt and
leading messages), so an engine with a prefix cache serves them cheaper back to back."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

NO_PREFIX = b""
_TEXT_BLOCK = 1024  # completions prompts: the first block of text stands for the prefix


def prefix_key(endpoint: str, body: dict[str, Any]) -> bytes:
    try:
        if endpoint == "/v1/chat/completions":
            messages = body.get("messages")
            if isinstance(messages, list) and len(messages) > 1:
                return _digest(orjson.dumps(messages[:-1]))
        elif endpoint == "/v1/messages":  # Anthropic's: the system prompt is a field of its own
            messages = body.get("messages")
            lead_messages = messages[:-1] if isinstance(messages, list) else []
            if body.get("system") is not None or lead_messages:
                return _digest(orjson.dumps([body.get("system"), lead_messages]))
        elif endpoint == "/v1/responses":
            lead: list[Any] = [body.get("instructions")]
            inp = body.get("input")
            if isinstance(inp, list) and len(inp) > 1:
                lead.append(inp[:-1])
            if lead != [None]:
                return _digest(orjson.dumps(lead))
        elif endpoint == "/v1/completions":
            prompt = body.get("prompt")
            if isinstance(prompt, str) and len(prompt) > _TEXT_BLOCK:
                return _digest(prompt[:_TEXT_BLOCK].encode())
    except (TypeError, orjson.JSONEncodeError):
        pass
    return NO_PREFIX


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()
