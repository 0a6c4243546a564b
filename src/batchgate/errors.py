"""One exception tree. Raised anywhere in the core, rendered once at the API edge as an OpenAI error envelope."""

from __future__ import annotations

import os
import socket
from typing import Any

from batchgate.domain.json_types import json_type_name


class BatchgateError(Exception):
    """Base of every error batchgate raises on purpose. Knows its HTTP status and OpenAI type/code/param."""

    status_code = 500
    error_type = "server_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}

    @property
    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(BatchgateError):
    """The request's parameters are wrong (400)."""

    status_code = 400
    error_type = "invalid_request_error"


class MissingParameter(InvalidRequest):
    def __init__(self, param: str) -> None:
        super().__init__(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


class InvalidType(InvalidRequest):
    def __init__(self, param: str, expected: str, got: object) -> None:
        super().__init__(
            f"Invalid type for '{param}': expected {expected}, but got {json_type_name(got)} instead.",
            param=param,
            code="invalid_type",
        )


class InvalidValue(InvalidRequest):
    default_code = "invalid_value"


class Unauthorized(BatchgateError):
    status_code = 401
    error_type = "invalid_request_error"


class PermissionDenied(BatchgateError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "insufficient_permissions"


class RateLimited(BatchgateError):
    """Too many requests of one kind from one key; `retry_after` seconds until the next is allowed."""

    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, round(self.retry_after + 0.5))),
                "retry-after-ms": str(max(1, int(self.retry_after * 1000)))}


class NotFound(BatchgateError):
    status_code = 404
    error_type = "invalid_request_error"


class BlobMissing(NotFound):
    """A file's bytes are not in storage: removed behind batchgate's back (a disk cleaned, an S3 object
    deleted). Every BlobStore raises this, never its own FileNotFoundError or S3 error. 404, not 5xx: asking
    again will not bring the bytes back, and clients retry 5xx answers."""

    default_code = "file_unavailable"

    def __init__(self, key: str) -> None:
        super().__init__(f"The contents of file {key} are missing from storage.")
        self.key = key


class Conflict(BatchgateError):
    """A state conflict that retrying will not fix (e.g. cancelling a completed batch)."""

    status_code = 409
    error_type = "invalid_request_error"

    @property
    def headers(self) -> dict[str, str]:
        return {"x-should-retry": "false"}


class PayloadTooLarge(BatchgateError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class InsufficientStorage(BatchgateError):
    status_code = 507
    error_type = "server_error"
    default_code = "insufficient_storage"


class Gone(BatchgateError):
    """What was asked for existed and is gone for good (a finished batch's results past their keeping time)."""

    status_code = 410
    error_type = "invalid_request_error"


class ServiceUnavailable(BatchgateError):
    status_code = 503
    error_type = "server_error"


class ConfigError(Exception):
    """Settings or config file are invalid; raised at start-up, never at request time."""


class BackendUnavailable(ConfigError):
    """The database or object storage that the settings name cannot be reached or used at start-up. Its message
    names the place (passwords masked) and the reason, for the one line the CLI prints."""


def failure_reason(e: BaseException) -> str:
    """Why a connection failed, in a few words ("connection refused"), for BackendUnavailable's one line."""
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.errno is not None:
        return os.strerror(e.errno).lower()  # asyncio's own text ("Connect call failed (...)") hides the cause
    return str(e) or type(e).__name__


class RunLocked(Exception):
    """Another `batchgate run` holds this batch's state directory: the same batch is running already."""
