"""`echo`: a deterministic chat/completions model that needs nothing, for tests and dry runs.

It answers with the last user message (or the prompt) and honours `n`, `max_tokens` and `stop`
the way a real model would report them, so batch plumbing can be tested end to end offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchgate.engine import params
from batchgate.engine.responses import (
    Usage,
    chat_choice,
    chat_completion,
    chat_message,
    text_choice,
    text_completion,
)


def count_tokens(text: str) -> int:
    """Whitespace-separated words: a stand-in tokenizer that is easy to reason about in tests."""
    return len(text.split())


def shape(text: str, sampling: params.Sampling) -> tuple[str, str]:
    """Apply `stop` then `max_tokens` (in words); return the text and its finish_reason."""
    cut = min((i for i in (text.find(s) for s in sampling.stop) if i >= 0), default=-1)
    if cut >= 0:
        return text[:cut], "stop"
    words = text.split()
    if sampling.max_tokens is not None and len(words) > sampling.max_tokens:
        return " ".join(words[: sampling.max_tokens]), "length"
    return text, "stop"


def stop_string(text: str, sampling: params.Sampling) -> str | None:
    """The stop string `shape` cut `text` at, if any (the one found first in the text)."""
    found = [(i, s) for s in sampling.stop if (i := text.find(s)) >= 0]
    return min(found)[1] if found else None


class EchoModel:
    """Stateless; cheap enough to answer on the event loop."""

    def chat(self, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
        messages = params.messages(body)
        sampling = params.sampling(body)
        texts = [params.content_text(m.get("content"), f"messages[{i}].content") for i, m in enumerate(messages)]
        users = [t for m, t in zip(messages, texts, strict=True) if m["role"] == "user"]
        text, reason = shape(users[-1] if users else "", sampling)
        usage = Usage(sum(count_tokens(t) for t in texts), count_tokens(text) * sampling.n)
        choices = [chat_choice(i, chat_message(text), reason) for i in range(sampling.n)]
        matched = stop_string(users[-1] if users else "", sampling)
        if matched is not None:
            for choice in choices:
                choice["stop_reason"] = matched  # as vLLM says which stop string ended the text
        return chat_completion(model, choices, usage)

    def complete(self, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
        prompts = [params.as_text(p) for p in params.prompts(body)]
        sampling = params.sampling(body)
        # OpenAI orders choices prompt by prompt, n per prompt.
        shaped = [shape(p, sampling) for p in prompts for _ in range(sampling.n)]
        usage = Usage(sum(count_tokens(p) for p in prompts), sum(count_tokens(text) for text, _ in shaped))
        choices = [text_choice(i, text, reason) for i, (text, reason) in enumerate(shaped)]
        return text_completion(model, choices, usage)
