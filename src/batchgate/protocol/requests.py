"""The request bodies the API accepts, as frozen values: one per body, each read from the wire by `from_json`
(or `from_form`) with OpenAI's 400s. Services take these, never the dicts.

Each `from_json` checks the fields in the order the API always has, so a body with two faults still names the
same one. Rules a value must keep whoever builds it (an endpoint the CLI was given, a project name from
`batchgate keys create`) are checked again when it is built. What needs the store (does the input file exist,
do the parts belong to the upload) is the services' to check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchgate.domain import limits
from batchgate.domain.batch import ENDPOINTS, RetryOnly, window_seconds
from batchgate.domain.files import FILE_PURPOSES
from batchgate.domain.webhooks import EVENT_TYPES, url_problem
from batchgate.errors import InvalidType, InvalidValue, MissingParameter
from batchgate.protocol import params

# What a purpose=batch upload may declare itself as: JSON Lines under any of the names clients use for it.
BATCH_MIME_TYPES = ("application/jsonl", "application/json", "text/jsonl", "application/x-ndjson", "text/plain",
                    "application/octet-stream")


@dataclass(frozen=True, slots=True)
class CreateBatch:
    """POST /v1/batches."""

    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None
    output_expires_after: int | None = None  # seconds, from `output_expires_after`

    def __post_init__(self) -> None:
        _endpoint(self.endpoint)
        _window(self.completion_window)

    @property
    def window_seconds(self) -> int:
        return _window(self.completion_window)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CreateBatch:
        input_file_id = params.require_str(body, "input_file_id")
        endpoint = _endpoint(params.require_str(body, "endpoint"))
        window = params.require_str(body, "completion_window")
        _window(window)
        return cls(
            input_file_id, endpoint, window, params.metadata(body.get("metadata")),
            params.expires_after(body.get("output_expires_after"), "output_expires_after"),
        )


def _endpoint(endpoint: str) -> str:
    if endpoint not in ENDPOINTS:
        allowed = ", ".join(f"'{e}'" for e in ENDPOINTS)
        raise InvalidValue(f"Invalid value: '{endpoint}'. Supported values are: {allowed}.", param="endpoint")
    return endpoint


def _window(window: str) -> int:
    seconds = window_seconds(window)
    if seconds is None or not limits.MIN_WINDOW_SECONDS <= seconds <= limits.MAX_WINDOW_SECONDS:
        raise InvalidValue(
            f"Invalid value: '{window}'. Supported values are: '24h' (or any whole number of hours or days "
            "from '1h' to '7d').",
            param="completion_window",
        )
    return seconds


@dataclass(frozen=True, slots=True)
class RetryBatch:
    """POST /v1/batches/{batch_id}/retry (an extension, docs/extensions.md): which lines of the ended batch run
    again, and the new batch's window and metadata (the original's when not given)."""

    only: RetryOnly = RetryOnly.FAILED
    completion_window: str | None = None
    metadata: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.completion_window is not None:
            _window(self.completion_window)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> RetryBatch:
        only = body.get("only", RetryOnly.FAILED.value)
        if not isinstance(only, str):
            raise InvalidType("only", "a string", only)
        if only not in {o.value for o in RetryOnly}:
            allowed = ", ".join(f"'{o.value}'" for o in RetryOnly)
            raise InvalidValue(f"Invalid value: '{only}'. Supported values are: {allowed}.", param="only")
        window = body.get("completion_window")
        if window is not None:
            if not isinstance(window, str):
                raise InvalidType("completion_window", "a string", window)
            _window(window)
        return cls(RetryOnly(only), window, params.metadata(body.get("metadata")))


@dataclass(frozen=True, slots=True)
class CreateFile:
    """POST /v1/files (multipart): the form's fields besides the file's bytes."""

    filename: str
    purpose: str
    expires_after: int | None = None  # seconds, from `expires_after[anchor]` and `expires_after[seconds]`

    def __post_init__(self) -> None:
        purpose(self.purpose)

    @classmethod
    def from_form(cls, fields: Mapping[str, str], filename: str | None) -> CreateFile:
        kind = purpose(params.require_str(fields, "purpose"))
        expires = params.expires_after(_bracketed(fields, "expires_after"), "expires_after")
        return cls(filename or "upload", kind, expires)


def purpose(value: str) -> str:
    if value not in FILE_PURPOSES:
        allowed = ", ".join(f"'{p}'" for p in FILE_PURPOSES)
        raise InvalidValue(f"Invalid value: '{value}'. Supported values are: {allowed}.", param="purpose")
    return value


def _bracketed(fields: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """`expires_after[anchor]=...&expires_after[seconds]=...` -> {"anchor": ..., "seconds": ...}."""
    out = {k[len(name) + 1:-1]: v for k, v in fields.items() if k.startswith(name + "[") and k.endswith("]")}
    return out or None


@dataclass(frozen=True, slots=True)
class CreateUpload:
    """POST /v1/uploads."""

    filename: str
    purpose: str
    bytes: int
    mime_type: str
    expires_after: int | None = None  # seconds the finished File lives, from `expires_after`

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CreateUpload:
        filename = params.require_str(body, "filename")
        kind = purpose(params.require_str(body, "purpose"))
        size = params.require_int(body, "bytes")
        mime = params.require_str(body, "mime_type")
        if size < 0 or size > limits.UPLOAD_MAX_BYTES:
            raise InvalidValue(
                f"Invalid 'bytes': must be between 0 and {limits.UPLOAD_MAX_BYTES}, got {size}.", param="bytes"
            )
        if kind == "batch" and mime not in BATCH_MIME_TYPES:
            raise InvalidValue(
                f"Invalid mime type '{mime}' for purpose 'batch'. Expected application/jsonl.", param="mime_type"
            )
        return cls(filename, kind, size, mime, params.expires_after(body.get("expires_after"), "expires_after"))


@dataclass(frozen=True, slots=True)
class CompleteUpload:
    """POST /v1/uploads/{upload_id}/complete. Whether the parts are the upload's, each once, is the service's
    to say: a missing or finished upload answers first (404, invalid_state), as it always has."""

    part_ids: tuple[str, ...]
    md5: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CompleteUpload:
        part_ids = body.get("part_ids")
        if part_ids is None:
            raise MissingParameter("part_ids")
        if not isinstance(part_ids, list) or not all(isinstance(p, str) for p in part_ids):
            raise InvalidType("part_ids", "an array of strings", part_ids)
        md5 = body.get("md5")
        if md5 is not None and not isinstance(md5, str):
            raise InvalidType("md5", "a string", md5)
        return cls(tuple(part_ids), md5)


@dataclass(frozen=True, slots=True)
class CreateWebhook:
    """POST /v1/webhooks. Whether this server sends to private addresses is its policy, which the service
    enforces; `from_json` is told it too, because the API has always named a refused URL before bad `events`."""

    url: str
    events: tuple[str, ...] = EVENT_TYPES

    @classmethod
    def from_json(cls, body: Mapping[str, Any], allow_private: bool) -> CreateWebhook:
        url = params.require_str(body, "url")
        problem = url_problem(url, allow_private)
        if problem is not None:
            raise InvalidValue(problem, param="url")
        return cls(url, _events(body.get("events")))


def _events(value: Any) -> tuple[str, ...]:
    if value is None:
        return EVENT_TYPES
    if not isinstance(value, list):
        raise InvalidType("events", "an array", value)
    if not value:
        raise InvalidValue("'events' must name at least one event.", param="events")
    for v in value:
        if v not in EVENT_TYPES:
            allowed = ", ".join(f"'{e}'" for e in EVENT_TYPES)
            raise InvalidValue(f"Invalid event {v!r}. Supported values are: {allowed}.", param="events")
    return tuple(e for e in EVENT_TYPES if e in value)


@dataclass(frozen=True, slots=True)
class CreateKey:
    """POST /v1/admin/keys, and `batchgate keys create`."""

    project: str
    admin: bool = False

    def __post_init__(self) -> None:
        _project_name(self.project)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> CreateKey:
        project = params.require_str(body, "project")
        admin = body.get("admin", False)
        if not isinstance(admin, bool):
            raise InvalidType("admin", "a boolean", admin)
        return cls(project, admin)


def _project_name(p: str) -> None:
    if not p or len(p) > 128 or not p.replace("-", "").replace("_", "").isalnum():
        raise InvalidValue("A project name is 1-128 letters, digits, '-' or '_'.", param="project")


@dataclass(frozen=True, slots=True)
class SetProjectWeight:
    """POST /v1/admin/projects/{project}, and `batchgate projects set`. Whether the weight is in range is the
    service's to say (services/projects.py), for the API and the CLI alike."""

    project: str
    weight: float

    def __post_init__(self) -> None:
        _project_name(self.project)

    @classmethod
    def from_json(cls, project: str, body: Mapping[str, Any]) -> SetProjectWeight:
        if body.get("weight") is None:
            raise MissingParameter("weight")
        weight = body["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InvalidType("weight", "a number", weight)
        return cls(project, float(weight))
