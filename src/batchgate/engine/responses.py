"""OpenAI-shaped response bodies, built the same way for every local model.

Field order and presence follow openai-python's `types/chat/chat_completion.py`,
`types/completion.py` and `types/create_embedding_response.py`.
"""

from __future__ import annotations

import base64
import secrets
import string
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_ALNUM = string.ascii_letters + string.digits


def completion_id(prefix: str) -> str:
    """`chatcmpl-...` / `cmpl-...`: OpenAI's ids are 29 alphanumerics after the prefix."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(29))


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def body(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def chat_message(content: str | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An assistant message; `extra` keeps fields a model adds (tool_calls) without overriding ours."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if extra:
        message.update({k: v for k, v in extra.items() if k not in message})
    return message


def chat_choice(index: int, message: dict[str, Any], finish_reason: str, logprobs: Any = None) -> dict[str, Any]:
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish_reason}


def text_choice(index: int, text: str, finish_reason: str, logprobs: Any = None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}


def chat_completion(model: str, choices: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
    return {
        "id": completion_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage.body(),
        "system_fingerprint": None,
    }


def text_completion(model: str, choices: list[dict[str, Any]], usage: Usage) -> dict[str, Any]:
    return {
        "id": completion_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage.body(),
        "system_fingerprint": None,
    }


def encode_vector(vector: Sequence[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # What OpenAI sends: base64 of the little-endian float32 array.
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return list(vector)


def embedding_list(
    model: str, vectors: Sequence[Sequence[float]], encoding_format: str, prompt_tokens: int
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_vector(v, encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
