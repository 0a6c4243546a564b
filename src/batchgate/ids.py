"""Object ids in OpenAI's formats."""

from __future__ import annotations

import secrets
import string

_BASE62 = string.digits + string.ascii_letters


def _base62(n: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def file_id() -> str:
    return "file-" + _base62(22)


def batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


def upload_id() -> str:
    return "upload_" + secrets.token_hex(12)


def part_id() -> str:
    return "part_" + secrets.token_hex(12)


def batch_request_id() -> str:
    return "batch_req_" + secrets.token_hex(12)


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


def api_key() -> str:
    return "bg-" + secrets.token_urlsafe(32)
