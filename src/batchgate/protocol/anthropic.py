"""Anthropic's Message Batches on the wire: the create body read with Anthropic's 400s, and the objects the routes
answer with (`message_batch`, its list page, `message_batch_deleted`), mirroring the `anthropic` SDK's types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from batchgate.domain.batch import Batch
from batchgate.domain.message_batch import CUSTOM_ID, processing_status, request_counts
from batchgate.domain.messages import MESSAGES_ENDPOINT
from batchgate.domain.status import BatchStatus
from batchgate.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class MessageRequest:
    custom_id: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateMessageBatch:
    """POST /v1/messages/batches: the requests, each a custom_id and the params of one Messages request."""

    requests: tuple[MessageRequest, ...]

    @property
    def model(self) -> str:
        return str(self.requests[0].params["model"])

    @classmethod
    def from_json(cls, body: Mapping[str, Any], max_requests: int) -> CreateMessageBatch:
        raw = body.get("requests")
        if raw is None:
            raise InvalidRequest("requests: Field required", param="requests")
        if not isinstance(raw, list):
            raise InvalidRequest("requests: Input should be a valid list", param="requests")
        if not raw:
            raise InvalidRequest("requests: List should have at least 1 item", param="requests")
        if len(raw) > max_requests:
            raise InvalidRequest(
                f"requests: a Message Batch holds at most {max_requests} requests; this one has {len(raw)}.",
                param="requests",
            )
        seen: set[str] = set()
        out = []
        for i, r in enumerate(raw):
            req = _request(i, r)
            if req.custom_id in seen:
                raise InvalidRequest(
                    f"requests.{i}.custom_id: Duplicate custom_id '{req.custom_id}'; each request in a batch needs "
                    "a unique custom_id.", param=f"requests.{i}.custom_id",
                )
            seen.add(req.custom_id)
            out.append(req)
        model = out[0].params["model"]
        for i, req in enumerate(out):
            if req.params["model"] != model:
                raise InvalidRequest(
                    f"requests.{i}.params.model: every request of a batch must use the same model here: this one "
                    f"uses '{req.params['model']}', the first uses '{model}' (send one batch per model).",
                    param=f"requests.{i}.params.model",
                )
        return cls(tuple(out))

    def input_lines(self) -> Iterator[bytes]:
        """The batch input file: one OpenAI batch line per request, each targeting /v1/messages."""
        for r in self.requests:
            yield orjson.dumps({"custom_id": r.custom_id, "method": "POST", "url": MESSAGES_ENDPOINT,
                                "body": r.params}) + b"\n"


def _request(i: int, r: Any) -> MessageRequest:
    at = f"requests.{i}"
    if not isinstance(r, dict):
        raise InvalidRequest(f"{at}: Input should be a valid dictionary", param=at)
    cid = r.get("custom_id")
    if not isinstance(cid, str) or not CUSTOM_ID.match(cid):
        raise InvalidRequest(
            f"{at}.custom_id: " + ("Field required" if cid is None else
                                   f"String should match pattern '{CUSTOM_ID.pattern}'"),
            param=f"{at}.custom_id",
        )
    params = r.get("params")
    if not isinstance(params, dict):
        raise InvalidRequest(f"{at}.params: " + ("Field required" if params is None else
                                                 "Input should be a valid dictionary"), param=f"{at}.params")
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"{at}.params.model: Field required", param=f"{at}.params.model")
    max_tokens = params.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise InvalidRequest(
            f"{at}.params.max_tokens: " + ("Field required" if max_tokens is None else
                                           "Input should be an integer greater than or equal to 1"),
            param=f"{at}.params.max_tokens",
        )
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(f"{at}.params.messages: " + ("Field required" if messages is None else
                                                          "List should have at least 1 item"),
                             param=f"{at}.params.messages")
    if params.get("stream") is True:
        raise InvalidRequest(f"{at}.params.stream: streaming is not supported in the Message Batches API.",
                             param=f"{at}.params.stream")
    return MessageRequest(cid, params)


def rfc3339(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def ended_at(b: Batch) -> int | None:
    if not b.status.terminal:
        return None
    return {
        BatchStatus.COMPLETED: b.completed_at, BatchStatus.FAILED: b.failed_at,
        BatchStatus.EXPIRED: b.expired_at, BatchStatus.CANCELLED: b.cancelled_at,
    }.get(b.status)


def message_batch_object(b: Batch, base_url: str) -> dict[str, Any]:
    """`base_url`: where this server was reached ("http://host:port/"), for `results_url`."""
    status = processing_status(b.status)
    return {
        "id": b.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": request_counts(b),
        "ended_at": rfc3339(ended_at(b)),
        "created_at": rfc3339(b.created_at),
        "expires_at": rfc3339(b.expires_at),
        "archived_at": None,
        "cancel_initiated_at": rfc3339(b.cancelling_at),
        "results_url": f"{base_url.rstrip('/')}/v1/messages/batches/{b.id}/results" if status == "ended" else None,
    }


def list_object(batches: Sequence[Batch], has_more: bool, base_url: str) -> dict[str, Any]:
    data = [message_batch_object(b, base_url) for b in batches]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def deleted_object(batch_id: str) -> dict[str, Any]:
    return {"id": batch_id, "type": "message_batch_deleted"}
