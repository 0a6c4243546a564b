"""The OpenAPI description of Anthropic's Message Batches routes (api/message_batches.py), merged into
GET /openapi.json: the objects mirror the `anthropic` SDK's types, errors take Anthropic's shape."""

from __future__ import annotations

from typing import Any

from batchgate.domain import limits

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NSTR: dict[str, Any] = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


def _answers(schema: dict[str, Any], *errors: int, media: str = "application/json") -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {media: {"schema": schema}}}}
    for status in (401, *errors):
        out[str(status)] = {"description": "Error",
                            "content": {"application/json": {"schema": _ref("AnthropicError")}}}
    return out


def _path_id() -> dict[str, Any]:
    return {"name": "message_batch_id", "in": "path", "required": True, "schema": STR}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


_COUNT = {"type": "integer", "minimum": 0}
SCHEMAS: dict[str, Any] = {
    "AnthropicError": _obj({"type": {"const": "error"}, "error": _obj({"type": STR, "message": STR}),
                            "request_id": STR}, required=["type", "error"]),
    "MessageBatch": _obj({
        "id": STR, "type": {"const": "message_batch"},
        "processing_status": {"type": "string", "enum": ["in_progress", "canceling", "ended"]},
        "request_counts": _obj({"processing": _COUNT, "succeeded": _COUNT, "errored": _COUNT, "canceled": _COUNT,
                                "expired": _COUNT}),
        "ended_at": NSTR, "created_at": STR, "expires_at": STR, "archived_at": NSTR, "cancel_initiated_at": NSTR,
        "results_url": NSTR,
    }),
    "MessageBatchList": _obj({"data": {"type": "array", "items": _ref("MessageBatch")},
                              "has_more": {"type": "boolean"}, "first_id": NSTR, "last_id": NSTR}),
    "MessageBatchDeleted": _obj({"id": STR, "type": {"const": "message_batch_deleted"}}),
}

_REQUEST = _obj({
    "custom_id": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
    "params": _obj({
        "model": STR, "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {"type": "array", "minItems": 1, "items": _obj(
            {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": STR})},
        "system": STR,
    }, required=["model", "max_tokens", "messages"]),
})

PATHS: dict[str, Any] = {
    "/v1/messages/batches": {
        "post": {
            "operationId": "createMessageBatch",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _obj(
                {"requests": {"type": "array", "minItems": 1, "items": _REQUEST}})}}},
            "responses": _answers(_ref("MessageBatch"), 400, 413, 429),
        },
        "get": {
            "operationId": "listMessageBatches",
            "parameters": [_query("limit", {"type": "integer", "minimum": 1,
                                            "maximum": limits.MESSAGE_BATCHES_LIST_MAX}),
                           _query("before_id", STR), _query("after_id", STR)],
            "responses": _answers(_ref("MessageBatchList"), 400),
        },
    },
    "/v1/messages/batches/{message_batch_id}": {
        "parameters": [_path_id()],
        "get": {"operationId": "retrieveMessageBatch", "responses": _answers(_ref("MessageBatch"), 404)},
        "delete": {"operationId": "deleteMessageBatch", "responses": _answers(_ref("MessageBatchDeleted"), 400, 404)},
    },
    "/v1/messages/batches/{message_batch_id}/cancel": {"post": {
        "operationId": "cancelMessageBatch", "parameters": [_path_id()],
        "responses": _answers(_ref("MessageBatch"), 400, 404),
    }},
    "/v1/messages/batches/{message_batch_id}/results": {"get": {
        "operationId": "messageBatchResults", "parameters": [_path_id()],
        "responses": _answers({"type": "string"}, 400, 404, media="application/x-jsonl"),
    }},
}
