"""Building output and error file lines (CONTRACT §9)."""

from __future__ import annotations

from typing import Any

import orjson

from batchgate import ids
from batchgate.domain.batch import Usage
from batchgate.domain.work import RequestResult
from batchgate.upstream.executor import UpstreamResponse


def response_result(line: int, custom_id: str, resp: UpstreamResponse, retries: int) -> RequestResult:
    """A request that got an HTTP answer: 2xx goes to the output file, anything else to the error file."""
    ok = 200 <= resp.status < 300
    try:
        parsed: Any = orjson.loads(resp.body)
        body = resp.body
    except orjson.JSONDecodeError:
        if ok:
            return error_result(
                line, custom_id, "invalid_upstream_response",
                f"The upstream answered {resp.status} with a body that is not JSON.", retries,
            )
        text = resp.body[:2000].decode("utf-8", "replace")
        parsed = {"error": {"message": text or f"HTTP {resp.status}", "type": "upstream_error", "param": None,
                            "code": None}}
        body = orjson.dumps(parsed)
    request_id = resp.request_id or ids.request_id()
    data = b"".join((
        b'{"id":', orjson.dumps(ids.batch_request_id()),
        b',"custom_id":', orjson.dumps(custom_id),
        b',"response":{"status_code":', str(resp.status).encode(),
        b',"request_id":', orjson.dumps(request_id),
        b',"body":', body.strip(),
        b'},"error":null}',
    ))
    usage = Usage.from_response(parsed) if ok else Usage()
    return RequestResult(line, ok, data, usage, retries)


def error_result(line: int, custom_id: str | None, code: str, message: str, retries: int = 0) -> RequestResult:
    """A request that has no HTTP answer to show (never sent, timed out, cancelled, expired). custom_id is None
    only when the input line could not be read (see unread.py)."""
    data = orjson.dumps({
        "id": ids.batch_request_id(),
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    })
    return RequestResult(line, False, data, Usage(), retries)


def custom_id_of(data: bytes) -> str | None:
    """The custom_id of a validated input line (None if it cannot be read after all)."""
    try:
        custom_id = orjson.loads(data)["custom_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return custom_id if isinstance(custom_id, str) else None


CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def error_of(data: bytes) -> tuple[str, str]:
    """The code and message of an error-file line: its own `error`, else the upstream's error envelope (its
    `code`, else its `type`, else the HTTP status)."""
    line = orjson.loads(data)
    own = line.get("error")
    if isinstance(own, dict):
        return str(own.get("code") or "error"), str(own.get("message") or "")
    response = line.get("response") or {}
    status = response.get("status_code")
    body = response.get("body")
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        return f"http_{status}", ""
    code = envelope.get("code") or envelope.get("type")
    return str(code) if code else f"http_{status}", str(envelope.get("message") or "")
