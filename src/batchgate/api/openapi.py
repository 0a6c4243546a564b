"""GET /openapi.json: a hand-written OpenAPI 3 description of batchgate's own routes (what schemathesis tests).

Only what batchgate serves: Files, Uploads, Batches, /v1/models and /health. The objects mirror OpenAI's; the
Batch object carries extensions: `estimated_completion_at`, `at_risk_since`, `batchgate.retries`, `paused`,
`paused_at`, `retried_from` and `retry_only`. Anthropic's Message Batches routes are described in
openapi_anthropic.py and merged in."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api import openapi_anthropic
from batchgate.api.context import JSON
from batchgate.domain import limits
from batchgate.domain.batch import ENDPOINTS
from batchgate.domain.files import FILE_PURPOSES

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NSTR: dict[str, Any] = {"type": ["string", "null"]}
NINT: dict[str, Any] = {"type": ["integer", "null"]}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def ok(schema: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
    for status in (401, *errors):
        out[str(status)] = {"description": "Error", "content": {"application/json": {"schema": ref("Error")}}}
    return out


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": STR}


def query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


EXPIRES_AFTER = obj({"anchor": {"type": "string", "enum": ["created_at"]},
                     "seconds": {"type": "integer", "minimum": limits.MIN_EXPIRES_SECONDS,
                                 "maximum": limits.MAX_EXPIRES_SECONDS}})

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({"message": STR, "type": STR, "param": NSTR, "code": NSTR})}),
    "File": obj({
        "id": STR, "object": {"const": "file"}, "bytes": INT, "created_at": INT, "expires_at": NINT,
        "filename": STR, "purpose": STR, "status": STR, "status_details": NSTR,
    }),
    "FileList": obj({"object": {"const": "list"}, "data": {"type": "array", "items": ref("File")},
                     "first_id": NSTR, "last_id": NSTR, "has_more": {"type": "boolean"}}),
    "FileDeleted": obj({"id": STR, "object": {"const": "file"}, "deleted": {"type": "boolean"}}),
    "Upload": obj({
        "id": STR, "object": {"const": "upload"}, "bytes": INT, "created_at": INT, "expires_at": INT,
        "filename": STR, "purpose": STR,
        "status": {"type": "string", "enum": ["pending", "completed", "cancelled", "expired"]},
        "file": {"oneOf": [ref("File"), {"type": "null"}]},
    }),
    "UploadPart": obj({"id": STR, "object": {"const": "upload.part"}, "created_at": INT, "upload_id": STR}),
    "Batch": obj({
        "id": STR, "object": {"const": "batch"}, "endpoint": STR, "model": NSTR,
        "errors": {"oneOf": [{"type": "null"}, obj({"object": STR, "data": {"type": "array", "items": obj(
            {"code": STR, "message": STR, "param": NSTR, "line": NINT})}})]},
        "input_file_id": STR, "completion_window": STR,
        "status": {"type": "string", "enum": ["validating", "failed", "in_progress", "finalizing", "completed",
                                              "expired", "cancelling", "cancelled"]},
        "output_file_id": NSTR, "error_file_id": NSTR, "created_at": INT, "in_progress_at": NINT,
        "expires_at": NINT, "finalizing_at": NINT, "completed_at": NINT, "failed_at": NINT, "expired_at": NINT,
        "cancelling_at": NINT, "cancelled_at": NINT,
        "request_counts": obj({"total": INT, "completed": INT, "failed": INT}),
        "estimated_completion_at": NINT, "at_risk_since": NINT,
        "usage": obj({"input_tokens": INT, "input_tokens_details": obj({"cached_tokens": INT}),
                      "output_tokens": INT, "output_tokens_details": obj({"reasoning_tokens": INT}),
                      "total_tokens": INT}),
        "metadata": {"type": ["object", "null"], "additionalProperties": STR},
        "batchgate": obj({"retries": INT}),
        "paused": {"type": "boolean"}, "paused_at": NINT, "retried_from": NSTR,
        "retry_only": {"type": ["string", "null"], "enum": ["failed", "unfinished", None]},
    }, required=["id", "object", "endpoint", "input_file_id", "completion_window", "status", "created_at",
                 "request_counts"]),
    "BatchList": obj({"object": {"const": "list"}, "data": {"type": "array", "items": ref("Batch")},
                      "first_id": NSTR, "last_id": NSTR, "has_more": {"type": "boolean"}}),
    "ModelList": obj({"object": {"const": "list"}, "data": {"type": "array", "items": obj(
        {"id": STR, "object": STR, "created": INT, "owned_by": STR})}}),
}

PATHS: dict[str, Any] = {
    "/health": {"get": {"operationId": "health", "security": [], "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": obj({"status": STR})}}}}}},
    "/v1/models": {"get": {"operationId": "listModels", "responses": ok(ref("ModelList"))}},
    "/v1/files": {
        "post": {
            "operationId": "createFile",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": obj({
                "file": {"type": "string", "format": "binary"},
                "purpose": {"type": "string", "enum": list(FILE_PURPOSES)},
                "expires_after": EXPIRES_AFTER,
            }, required=["file", "purpose"])}}},
            "responses": ok(ref("File"), 400, 413, 507),
        },
        "get": {
            "operationId": "listFiles",
            "parameters": [query("limit", {"type": "integer", "minimum": 1, "maximum": limits.FILES_LIST_MAX}),
                           query("order", {"type": "string", "enum": ["asc", "desc"]}),
                           query("after", STR), query("purpose", STR)],
            "responses": ok(ref("FileList"), 400),
        },
    },
    "/v1/files/{file_id}": {
        "parameters": [path_id("file_id")],
        "get": {"operationId": "retrieveFile", "responses": ok(ref("File"), 404)},
        "delete": {"operationId": "deleteFile", "responses": ok(ref("FileDeleted"), 404)},
    },
    "/v1/files/{file_id}/content": {
        "parameters": [path_id("file_id")],
        "get": {"operationId": "downloadFile", "responses": {
            "200": {"description": "The file's bytes",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            **{k: v for k, v in ok(STR, 404).items() if k != "200"}}},
    },
    "/v1/uploads": {"post": {
        "operationId": "createUpload",
        "requestBody": json_body(obj({
            "filename": STR, "purpose": {"type": "string", "enum": list(FILE_PURPOSES)},
            "bytes": {"type": "integer", "minimum": 0, "maximum": limits.UPLOAD_MAX_BYTES}, "mime_type": STR,
            "expires_after": EXPIRES_AFTER,
        }, required=["filename", "purpose", "bytes", "mime_type"])),
        "responses": ok(ref("Upload"), 400),
    }},
    "/v1/uploads/{upload_id}/parts": {"post": {
        "operationId": "addUploadPart",
        "parameters": [path_id("upload_id")],
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": obj(
            {"data": {"type": "string", "format": "binary"}})}}},
        "responses": ok(ref("UploadPart"), 400, 404, 413, 507),
    }},
    "/v1/uploads/{upload_id}/complete": {"post": {
        "operationId": "completeUpload",
        "parameters": [path_id("upload_id")],
        "requestBody": json_body(obj({"part_ids": {"type": "array", "items": STR}, "md5": STR},
                                     required=["part_ids"])),
        "responses": ok(ref("Upload"), 400, 404),
    }},
    "/v1/uploads/{upload_id}/cancel": {"post": {
        "operationId": "cancelUpload", "parameters": [path_id("upload_id")], "responses": ok(ref("Upload"), 400, 404),
    }},
    "/v1/batches": {
        "post": {
            "operationId": "createBatch",
            "requestBody": json_body(obj({
                "input_file_id": STR, "endpoint": {"type": "string", "enum": list(ENDPOINTS)},
                "completion_window": {"type": "string", "pattern": "^[1-9][0-9]{0,3}[hd]$"},
                "metadata": {"type": ["object", "null"], "additionalProperties": STR,
                             "maxProperties": limits.MAX_METADATA_PAIRS},
                "output_expires_after": EXPIRES_AFTER,
            }, required=["input_file_id", "endpoint", "completion_window"])),
            "responses": ok(ref("Batch"), 400),
        },
        "get": {
            "operationId": "listBatches",
            "parameters": [query("limit", {"type": "integer", "minimum": 1, "maximum": limits.BATCHES_LIST_MAX}),
                           query("after", STR)],
            "responses": ok(ref("BatchList"), 400),
        },
    },
    "/v1/batches/{batch_id}": {"get": {
        "operationId": "retrieveBatch", "parameters": [path_id("batch_id")], "responses": ok(ref("Batch"), 404),
    }},
    "/v1/batches/{batch_id}/cancel": {"post": {
        "operationId": "cancelBatch", "parameters": [path_id("batch_id")], "responses": ok(ref("Batch"), 404, 409),
    }},
    # Extensions (docs/extensions.md).
    "/v1/batches/{batch_id}/pause": {"post": {
        "operationId": "pauseBatch", "parameters": [path_id("batch_id")], "responses": ok(ref("Batch"), 404, 409),
    }},
    "/v1/batches/{batch_id}/resume": {"post": {
        "operationId": "resumeBatch", "parameters": [path_id("batch_id")], "responses": ok(ref("Batch"), 404, 409),
    }},
    "/v1/batches/{batch_id}/retry": {"post": {
        "operationId": "retryBatch", "parameters": [path_id("batch_id")],
        "requestBody": {"required": False, "content": {"application/json": {"schema": obj({
            "only": {"type": "string", "enum": ["failed", "unfinished"]},
            "completion_window": STR,
            "metadata": {"type": ["object", "null"], "additionalProperties": STR},
        }, required=[])}}},
        "responses": ok(ref("Batch"), 400, 404, 409),
    }},
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "batchgate", "version": "1", "description": "OpenAI-compatible Files, Uploads and Batch "
                                                                    "API served by batchgate."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**PATHS, **openapi_anthropic.PATHS},
        "components": {"schemas": {**SCHEMAS, **openapi_anthropic.SCHEMAS},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


async def openapi(request: Request) -> Response:
    return JSON(document())


routes = [Route("/openapi.json", openapi, methods=["GET"])]
