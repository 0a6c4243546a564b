"""Checks of the request bodies the local models accept, with OpenAI's wording and `param` names.

The engine answers like an OpenAI-compatible server, so a bad body becomes a 400 with the
parameter named, never a Python exception out of `send`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchgate.errors import InvalidRequest, InvalidType, InvalidValue, MissingParameter

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_N = 128
MAX_STOP = 4
# OpenAI's limit on inputs per embeddings request.
MAX_EMBEDDING_INPUTS = 2048

Prompt = str | list[int]  # text, or an array of token ids


@dataclass(frozen=True, slots=True)
class Sampling:
    """The generation settings every chat/completions model honours."""

    n: int
    max_tokens: int | None
    stop: tuple[str, ...]
    temperature: float | None
    top_p: float | None
    seed: int | None


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    inputs: tuple[Prompt, ...]
    dimensions: int | None
    encoding_format: str  # "float" | "base64"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_int(value):
        raise InvalidType(name, "an integer", value)
    if not low <= value <= high:
        raise InvalidValue(f"'{name}' must be between {low} and {high}, got {value}.", param=name)
    return int(value)


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value):
        raise InvalidType(name, "a number", value)
    if not low <= value <= high:
        raise InvalidValue(f"'{name}' must be between {low:g} and {high:g}, got {value}.", param=name)
    return float(value)


def model_name(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise MissingParameter("model")
    if not isinstance(model, str):
        raise InvalidType("model", "a string", model)
    return model


def refuse_streaming(body: Mapping[str, Any]) -> None:
    # A whole JSON body is the only answer `send` can give.
    if body.get("stream") is True:
        raise InvalidValue("Streaming is not supported by the local engine.", param="stream")


def sampling(body: Mapping[str, Any]) -> Sampling:
    # max_completion_tokens replaced max_tokens in OpenAI's chat API; both are accepted.
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if len(stop) > MAX_STOP:
            raise InvalidValue(f"'stop' may hold at most {MAX_STOP} sequences.", param="stop")
        stops = tuple(stop)
    else:
        raise InvalidType("stop", "a string or an array of strings", stop)
    n = _int(body, "n", 1, MAX_N)
    return Sampling(
        n=1 if n is None else n,
        max_tokens=_int(body, name, 1, 2**31 - 1),
        stop=tuple(s for s in stops if s),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        seed=_int(body, "seed", -(2**63), 2**63 - 1),
    )


def content_text(content: object, param: str) -> str:
    """The text of a message's content: a string, null, or an array of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidValue("Only text content parts are supported by local models.", param=f"{param}[{i}]")
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise InvalidType(f"{param}[{i}].text", "a string", text)
            texts.append(text)
        return "\n".join(texts)
    raise InvalidType(param, "a string or an array of content parts", content)


def messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = body.get("messages")
    if value is None:
        raise MissingParameter("messages")
    if not isinstance(value, list):
        raise InvalidType("messages", "an array", value)
    if not value:
        raise InvalidValue("'messages' must contain at least one message.", param="messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidType(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidValue(
                f"Invalid value for 'messages[{i}].role': {role!r}. Expected one of {sorted(ROLES)}.",
                param=f"messages[{i}].role",
            )
        content_text(message.get("content"), f"messages[{i}].content")
    return value


def prompts(body: Mapping[str, Any]) -> list[Prompt]:
    """`/v1/completions` prompts: a string, an array of strings, a token array, or an array of those."""
    value = body.get("prompt")
    if value is None:
        raise MissingParameter("prompt")
    found = _texts_or_tokens(value, "prompt")
    if not found:
        raise InvalidValue("'prompt' must not be empty.", param="prompt")
    return found


def embedding_request(body: Mapping[str, Any]) -> EmbeddingRequest:
    value = body.get("input")
    if value is None:
        raise MissingParameter("input")
    inputs = _texts_or_tokens(value, "input")
    if not inputs:
        raise InvalidValue("'input' must not be empty.", param="input")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise InvalidValue(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} items.", param="input")
    # OpenAI refuses empty strings and empty token arrays.
    for i, item in enumerate(inputs):
        if len(item) == 0:
            raise InvalidValue(f"'input[{i}]' must not be empty.", param="input")
    encoding = body.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if encoding not in ("float", "base64"):
        raise InvalidValue(
            f"Invalid value for 'encoding_format': {encoding!r}. Expected 'float' or 'base64'.",
            param="encoding_format",
        )
    return EmbeddingRequest(
        inputs=tuple(inputs),
        dimensions=_int(body, "dimensions", 1, 4096),
        encoding_format=str(encoding),
    )


def _texts_or_tokens(value: object, param: str) -> list[Prompt]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidType(param, "a string or an array", value)
    if value and all(_is_int(v) for v in value):
        return [list(value)]
    found: list[Prompt] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, list) and all(_is_int(v) for v in item):
            found.append(list(item))
        else:
            raise InvalidType(f"{param}[{i}]", "a string or an array of integers", item)
    return found


def as_text(prompt: Prompt) -> str:
    """Token arrays are read as the text of their integers by models without that tokenizer."""
    return prompt if isinstance(prompt, str) else " ".join(str(t) for t in prompt)


def require_text(prompt: Prompt, param: str) -> str:
    if not isinstance(prompt, str):
        raise InvalidRequest("This model takes text input, not token arrays.", param=param)
    return prompt
