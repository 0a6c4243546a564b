"""Helpers shared by the API and end-to-end tests: batch input lines, waiting, results, raw HTTP."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from openai import OpenAI
from openai.types import Batch

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
MODERATIONS = "/v1/moderations"
CHAT_MODEL = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
BATCH_KEYS = frozenset(
    {
        "id",
        "object",
        "endpoint",
        "model",
        "errors",
        "input_file_id",
        "completion_window",
        "status",
        "output_file_id",
        "error_file_id",
        "created_at",
        "in_progress_at",
        "expires_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelling_at",
        "cancelled_at",
        "request_counts",
        "usage",
        "metadata",
    }
)


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def jsonl(lines: list[Any]) -> bytes:
    """Dicts become JSON lines; strings are written verbatim (for broken lines)."""
    out = []
    for line in lines:
        out.append(line if isinstance(line, str) else json.dumps(line))
    return ("\n".join(out) + "\n").encode()


def chat_line(
    custom_id: str,
    text: str | None = None,
    *,
    model: str = CHAT_MODEL,
    x_fake: dict[str, Any] | None = None,
    url: str = CHAT,
    **body: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text or custom_id}]}
    payload.update(body)
    if x_fake is not None:
        payload["x_fake"] = x_fake
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": payload}


def embedding_line(custom_id: str, text: Any = None, *, model: str = EMBED_MODEL, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "input": text if text is not None else custom_id}
    payload.update(body)
    return {"custom_id": custom_id, "method": "POST", "url": EMBEDDINGS, "body": payload}


def upload_input(client: OpenAI, lines: list[Any] | bytes, filename: str = "input.jsonl") -> str:
    content = lines if isinstance(lines, bytes) else jsonl(lines)
    return client.files.create(file=(filename, content), purpose="batch").id


def submit_batch(
    client: OpenAI,
    lines: list[Any] | bytes,
    endpoint: str = CHAT,
    completion_window: str = "24h",
    **kwargs: Any,
) -> Batch:
    file_id = upload_input(client, lines)
    return client.batches.create(
        input_file_id=file_id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window=completion_window,  # type: ignore[arg-type]
        **kwargs,
    )


def wait_for_batch(client: OpenAI, batch_id: str, timeout: float = 60.0, until: frozenset[str] = TERMINAL) -> Batch:
    """Poll every 0.2 s until the batch's status is in `until`."""
    deadline = time.monotonic() + timeout
    batch = client.batches.retrieve(batch_id)
    while batch.status not in until:
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout}s: {batch}")
        time.sleep(0.2)
        batch = client.batches.retrieve(batch_id)
    return batch


def wait_until(client: OpenAI, batch_id: str, predicate: Any, timeout: float = 30.0) -> Batch:
    deadline = time.monotonic() + timeout
    batch = client.batches.retrieve(batch_id)
    while not predicate(batch):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached for {batch_id} after {timeout}s: {batch}")
        time.sleep(0.1)
        batch = client.batches.retrieve(batch_id)
    return batch


def run_batch(client: OpenAI, lines: list[Any] | bytes, timeout: float = 60.0, **kwargs: Any) -> Batch:
    batch = submit_batch(client, lines, **kwargs)
    return wait_for_batch(client, batch.id, timeout=timeout)


def file_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    raw = client.files.content(file_id).content
    assert raw == b"" or raw.endswith(b"\n"), "JSONL files end with a newline"
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def by_custom_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    counts = Counter(line["custom_id"] for line in lines)
    duplicates = [cid for cid, n in counts.items() if n > 1]
    assert not duplicates, f"custom_ids written more than once: {duplicates[:10]}"
    return {line["custom_id"]: line for line in lines}


def results(client: OpenAI, batch: Batch) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Download the output and error files as {custom_id: line} (asserting no duplicates in either)."""
    return by_custom_id(file_lines(client, batch.output_file_id)), by_custom_id(file_lines(client, batch.error_file_id))


def assert_exactly_once(
    client: OpenAI, batch: Batch, custom_ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Terminal invariant: completed + failed == total and every custom_id exactly once in output + error."""
    outputs, errors = results(client, batch)
    both = set(outputs) & set(errors)
    assert not both, f"in both output and error file: {sorted(both)[:10]}"
    assert set(outputs) | set(errors) == set(custom_ids)
    counts = batch.request_counts
    assert counts is not None
    assert counts.total == len(custom_ids)
    assert counts.completed + counts.failed == counts.total
    assert counts.completed == len(outputs)
    assert counts.failed == len(errors)
    assert (batch.output_file_id is None) == (not outputs)
    assert (batch.error_file_id is None) == (not errors)
    return outputs, errors


# ---------------------------------------------------------------- raw HTTP


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw(
    base: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    api_key: str | None = "test",
    timeout: float = 30.0,
) -> RawResponse:
    """One plain HTTP request (no SDK), e.g. for missing auth or malformed bodies."""
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        if api_key is not None:
            all_headers.setdefault("Authorization", f"Bearer {api_key}")
        data = body.encode() if isinstance(body, str) else body
        conn.request(method, parsed.path.rstrip("/") + path, body=data, headers=all_headers)
        response = conn.getresponse()
        payload = response.read()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        conn.close()


def raw_json(base: str, method: str, path: str, payload: Any, **kwargs: Any) -> RawResponse:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    return raw(base, method, path, json.dumps(payload), headers=headers, **kwargs)


def multipart(fields: list[tuple[str, Any]], boundary: str = "testboundary1234") -> tuple[bytes, str]:
    """Encode form fields; a value (filename, bytes) becomes a file part."""
    chunks: list[bytes] = []
    for name, value in fields:
        chunks.append(f"--{boundary}\r\n".encode())
        if isinstance(value, tuple):
            filename, content = value
            chunks.append(
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            chunks.append(content)
        else:
            chunks.append(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


ANY: Any = object()  # "don't check this field"


def assert_envelope(
    response: RawResponse,
    status: int,
    *,
    code: Any = ANY,
    param: Any = ANY,
    message: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error envelope, as JSON, with the given status (and code/param/message when given)."""
    assert response.status == status, (response.status, response.body[:500])
    assert response.headers.get("content-type", "").split(";")[0].strip().endswith("json"), response.headers
    assert response.headers.get("x-request-id"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if code is not ANY:
        assert error["code"] == code, error
    if param is not ANY:
        assert error["param"] == param, error
    if message is not None:
        assert error["message"] == message, error
    return error  # type: ignore[no-any-return]
