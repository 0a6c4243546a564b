"""Reading request parameters with OpenAI's error codes (400, never a framework's 422)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from batchgate.domain import limits
from batchgate.errors import InvalidRequest, InvalidType, InvalidValue, MissingParameter


def parse_json_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise InvalidType("body", "an object", body)
    return body


def require_str(body: Mapping[str, Any], key: str, param: str | None = None) -> str:
    name = param or key
    if key not in body or body[key] is None:
        raise MissingParameter(name)
    value = body[key]
    if not isinstance(value, str):
        raise InvalidType(name, "a string", value)
    if not value:
        raise InvalidValue(f"Invalid value for '{name}': empty string.", param=name)
    return value


def require_int(body: Mapping[str, Any], key: str, param: str | None = None) -> int:
    name = param or key
    if key not in body or body[key] is None:
        raise MissingParameter(name)
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidType(name, "an integer", value)
    return value


def query_int(query: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidType(key, "an integer", raw) from None
    if value < lo:
        raise InvalidValue(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {lo}, but got {value} instead.",
            param=key, code="invalid_value",
        )
    if value > hi:
        raise InvalidValue(
            f"Invalid '{key}': integer above maximum value. Expected a value <= {hi}, but got {value} instead.",
            param=key, code="invalid_value",
        )
    return value


def query_choice(query: Mapping[str, str], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = query.get(key) or default
    if value not in choices:
        allowed = ", ".join(f"'{c}'" for c in choices)
        raise InvalidValue(f"Invalid value: '{value}'. Supported values are: {allowed}.", param=key)
    return value


def expires_after(value: Any, param: str) -> int | None:
    """`{anchor: "created_at", seconds: 3600..2592000}` -> seconds (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidType(param, "an object", value)
    anchor = value.get("anchor")
    if anchor is None:
        raise MissingParameter(f"{param}.anchor")
    if anchor != "created_at":
        raise InvalidValue(
            f"Invalid value: '{anchor}'. Supported values are: 'created_at'.", param=f"{param}.anchor"
        )
    seconds = value.get("seconds")
    if seconds is None:
        raise MissingParameter(f"{param}.seconds")
    if isinstance(seconds, str):
        try:
            seconds = int(seconds)
        except ValueError:
            raise InvalidType(f"{param}.seconds", "an integer", value.get("seconds")) from None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidType(f"{param}.seconds", "an integer", seconds)
    if not limits.MIN_EXPIRES_SECONDS <= seconds <= limits.MAX_EXPIRES_SECONDS:
        raise InvalidValue(
            f"Invalid '{param}.seconds': must be between {limits.MIN_EXPIRES_SECONDS} and "
            f"{limits.MAX_EXPIRES_SECONDS}, got {seconds}.",
            param=f"{param}.seconds",
        )
    return seconds


def metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidType("metadata", "an object", value)
    if len(value) > limits.MAX_METADATA_PAIRS:
        raise InvalidValue(
            f"Invalid 'metadata': too many properties. Expected an object with at most "
            f"{limits.MAX_METADATA_PAIRS} properties, but got {len(value)} instead.",
            param="metadata", code="invalid_value",
        )
    for k, v in value.items():
        if len(k) > limits.MAX_METADATA_KEY:
            raise InvalidValue(
                f"Invalid 'metadata': key '{k[:80]}' is longer than {limits.MAX_METADATA_KEY} characters.",
                param="metadata", code="invalid_value",
            )
        if not isinstance(v, str):
            raise InvalidType(f"metadata.{k}", "a string", v)
        if len(v) > limits.MAX_METADATA_VALUE:
            raise InvalidValue(
                f"Invalid 'metadata.{k}': string too long. Expected a string with maximum length "
                f"{limits.MAX_METADATA_VALUE}, but got a string with length {len(v)} instead.",
                param=f"metadata.{k}", code="invalid_value",
            )
    return dict(value)
