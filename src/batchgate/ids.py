"""Object ids in OpenAI's formats."""

from __future__ import annotations

import random
import secrets
import string

_BASE62 = string.digits + string.ascii_letters


def _base62(n: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def file_id() -> str:
    return "file-" + _base62(22)


def batch_id() -> str:
    return "batch_" + secrets.token_hex(16)


def message_batch_id() -> str:
    """An Anthropic Message Batch's id."""
    return "msgbatch_" + _base62(24)


def upload_id() -> str:
    return "upload_" + secrets.token_hex(12)


def part_id() -> str:
    return "part_" + secrets.token_hex(12)


# Per-request ids are labels, not secrets: a PRNG seeded from the OS is enough and costs no system call
# (they are made for every request line and every API response).
_FAST = random.Random(secrets.randbits(128))


def batch_request_id() -> str:
    return f"batch_req_{_FAST.getrandbits(96):024x}"


def request_id() -> str:
    return f"req_{_FAST.getrandbits(128):032x}"


def api_key() -> str:
    return "bg-" + secrets.token_urlsafe(32)


def webhook_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def webhook_delivery_id() -> str:
    """Also the Standard Webhooks `webhook-id` header (msg_ as the spec's examples use)."""
    return "msg_" + secrets.token_hex(16)
