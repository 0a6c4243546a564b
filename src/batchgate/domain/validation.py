"""Checking a batch input file line by line (CONTRACT §7). Pure: bytes in, errors and counts out."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from batchgate.domain.batch import BatchError
from batchgate.domain.custom_ids import CustomIds, Repeats
from batchgate.domain.json_types import json_type_name
from batchgate.domain.limits import OPENAI_LIMITS, BatchLimits

_ENDPOINT_LABEL = {
    "/v1/chat/completions": "Chat Completions",
    "/v1/completions": "Completions",
    "/v1/embeddings": "Embeddings",
    "/v1/responses": "Responses",
    "/v1/moderations": "Moderations",
    "/v1/images/generations": "Images",
    "/v1/images/edits": "Images",
    "/v1/videos": "Videos",
    "/v1/messages": "Messages",
}


@dataclass(frozen=True, slots=True)
class _Required:
    """A body field an endpoint cannot do without, besides `model`."""

    name: str
    missing: str  # the message when it is absent or null
    non_empty_array: str | None = None  # the message when it must be a non-empty array and is not


_PROMPT = _Required("prompt", "Prompt parameter is required.")
_INPUT = _Required("input", "Input parameter is required.")
_REQUIRED_INPUT: dict[str, tuple[_Required, ...]] = {
    "/v1/chat/completions": (
        _Required("messages", "Messages parameter is required.", "Messages must be a non-empty array."),
    ),
    "/v1/completions": (_PROMPT,),
    "/v1/embeddings": (_INPUT,),
    "/v1/responses": (_INPUT,),
    "/v1/moderations": (_INPUT,),
    "/v1/images/generations": (_PROMPT,),
    # A batch line's body is JSON, so an edit takes the JSON form of the endpoint: image references in `images`.
    "/v1/images/edits": (_PROMPT, _Required("images", "Images parameter is required.",
                                            "Images must be a non-empty array.")),
    "/v1/videos": (_PROMPT,),
    "/v1/messages": (
        _Required("messages", "messages: Field required", "messages: List should have at least 1 item"),
        _Required("max_tokens", "max_tokens: Field required"),
    ),
}

_NOT_JSON = object()  # what a line that doesn't parse "parses" to

ModelCheck = Callable[[str], str | None]
"""Returns None when the model can be served (or, for `check_endpoint`, when whatever serves the model serves the
batch's endpoint), else the reason it cannot."""
_UNCHECKED = BatchError("", "")

NumberedLine = tuple[int, int, int, bytes | memoryview]
"""(line number, start offset, end offset, the line's bytes without its newline)."""


@dataclass
class LineValidator:
    """Feed it every line of an input file in order; it collects one error per bad line (capped)."""

    endpoint: str
    check_model: ModelCheck
    max_errors: int = 100
    count_tokens: Callable[[dict[str, Any]], int] | None = None  # prompt tokens of a valid line's body, if limited
    limits: BatchLimits = OPENAI_LIMITS  # the configured ones: OpenAI's unless settings say otherwise
    check_endpoint: ModelCheck | None = None
    prompt_tokens: int = 0
    requests: int = 0
    embedding_inputs: int = 0
    model: str | None = None
    errors: list[BatchError] = field(default_factory=list)
    bad_lines: int = 0
    custom_ids: CustomIds = field(default_factory=CustomIds)
    _rejected: array[int] = field(default_factory=lambda: array("q"))  # lines that are not valid requests
    _repeats: Repeats | None = None
    _model_verdicts: dict[str, BatchError | None] = field(default_factory=dict)  # per model, without a line

    def __post_init__(self) -> None:
        first, *more = _REQUIRED_INPUT[self.endpoint]
        self._input_field = first.name
        self._input_is_array = first.non_empty_array is not None
        self._more_required = tuple(more)

    def feed(self, line_no: int, raw: bytes | memoryview) -> bool:
        """Check one line (1-based number, without its newline). Returns True if it is a valid request, as far
        as one line tells: whether its custom_id repeats an earlier one is known at the end (`repeats_possible`)."""
        if self._feed(line_no, raw):
            return True
        self._rejected.append(line_no)
        return False

    def _feed(self, line_no: int, raw: bytes | memoryview) -> bool:
        if not raw:
            return False  # an empty line (and the end of a file with a trailing newline) is not a request
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if bytes(raw).isspace():
                return False  # nor is a line of blanks
            obj = _NOT_JSON
        self.requests += 1
        err = None if self._passes(obj) else self._check(line_no, obj)
        if err is not None:
            self.bad_lines += 1
            if len(self.errors) < self.max_errors:
                self.errors.append(err)
            return False
        self.custom_ids.add_many((obj["custom_id"],))
        if self.count_tokens is not None:
            self.prompt_tokens += self.count_tokens(obj["body"])
        return True

    def feed_lines(self, lines: list[NumberedLine]) -> list[NumberedLine]:
        """`feed` for consecutive lines; returns the valid requests among them (`lines` itself when all are).
        The common case, a line that parses and passes every check, runs inline: a call per line costs."""
        if self.count_tokens is not None:
            return [line for line in lines if self.feed(line[0], line[3])]
        loads, passes, feed = orjson.loads, self._passes, self.feed
        accepted: list[NumberedLine] | None = None  # made at the first line that is not a valid request
        ids: list[str] = []  # the custom_ids of the lines that passed inline
        for line in lines:
            number, _, _, raw = line
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                obj = _NOT_JSON
            if passes(obj):
                ids.append(obj["custom_id"])
                if accepted is not None:
                    accepted.append(line)
                continue
            if accepted is None:
                accepted = lines[:len(ids)]
            if feed(number, raw):  # every check again, one by one, to find the error
                accepted.append(line)
        self.requests += len(ids)
        self.custom_ids.add_many(ids)
        return lines if accepted is None else accepted

    def repeats_possible(self) -> bool:
        """After the last line: whether two custom_ids share a hash. Then the lines must be shown to `recheck`,
        in order, until it returns False, before `finish` can tell real repeats from hash collisions."""
        if self._repeats is None:
            self._repeats = Repeats(self.custom_ids.suspects(), self.custom_ids.digest)
        return self._repeats.pending > 0

    def recheck(self, lines: Iterable[NumberedLine]) -> bool:
        """The second read `repeats_possible` asks for. Returns whether it needs more lines."""
        repeats, rejected = self._repeats, self._rejected
        if repeats is None:
            raise RuntimeError("recheck() before repeats_possible()")
        for number, _, _, raw in lines:
            i = bisect.bisect_left(rejected, number)
            if i < len(rejected) and rejected[i] == number:
                continue
            repeats.see(number, orjson.loads(raw)["custom_id"])
            if not repeats.pending:
                return False
        return True

    def finish(self, file_bytes: int) -> list[BatchError]:
        """Whole-file checks, then every error in line order (with a summary entry past the cap)."""
        if self.repeats_possible():
            raise RuntimeError("finish() before the second read that repeats_possible() asked for")
        assert self._repeats is not None
        repeats = self._repeats.lines
        out = sorted(self.errors + [_duplicate(n) for n in repeats[:self.max_errors]], key=_line)[:self.max_errors]
        bad_lines = self.bad_lines + len(repeats)
        if bad_lines > len(out):
            more = bad_lines - len(out)
            out.append(BatchError("too_many_errors", f"{more} more lines have errors that are not listed."))
        if self.limits.file_too_large(file_bytes):
            out.insert(0, BatchError(
                "file_too_large",
                f"The batch input file is larger than the {self.limits.file_bytes} maximum for the "
                f"{self.model or 'requested'} model. Please try again with a smaller batch.",
                "input_file_id",
            ))
        if self.requests == 0:
            out.insert(0, BatchError("empty_file", "The batch input file is empty: it contains no requests."))
        if self.limits.too_many_requests(self.requests):
            out.insert(0, BatchError(
                "too_many_tasks",
                f"The batch input file contains {self.requests} requests; the limit is "
                f"{self.limits.requests} requests per batch.",
            ))
        if self.limits.too_many_embedding_inputs(self.embedding_inputs):
            out.insert(0, BatchError(
                "too_many_tasks",
                f"The batch contains {self.embedding_inputs} embedding inputs; the limit is "
                f"{self.limits.embedding_inputs} per batch.",
            ))
        return out

    def _passes(self, obj: Any) -> bool:
        """The common case in one go: a line that passes every check below (then its custom_id is taken).
        Anything else goes through the checks one by one, in their order, to find its error."""
        if type(obj) is not dict:
            return False
        cid, body = obj.get("custom_id"), obj.get("body")
        if not (type(cid) is str and type(body) is dict and obj.get("method") == "POST"
                and obj.get("url") == self.endpoint and 0 < len(cid) <= 512 and body.get("stream") is not True):
            return False
        model = body.get("model")
        if model is None or model != self.model or self._model_verdicts.get(model, _UNCHECKED) is not None:
            return False
        value = body.get(self._input_field)
        if value is None:
            return False
        if self._input_is_array:
            if type(value) is not list or not value:
                return False
        for req in self._more_required:
            more = body.get(req.name)
            if more is None or (req.non_empty_array is not None and (type(more) is not list or not more)):
                return False
        if self.endpoint == "/v1/embeddings":
            self.embedding_inputs += _count_inputs(value)
        return True

    def _check(self, n: int, obj: Any) -> BatchError | None:
        if obj is _NOT_JSON:
            return BatchError("invalid_json_line", "This line is not parseable as valid JSON.", None, n)
        if type(obj) is not dict:
            return BatchError("invalid_json_line", "This line is not a JSON object.", None, n)
        return self._check_obj(n, obj.get("custom_id"), obj.get("method"), obj.get("url"), obj.get("body"))

    def _check_obj(self, n: int, cid: Any, method: Any, url: Any, body: Any) -> BatchError | None:
        if cid is None or method is None or url is None or body is None:
            values = {"custom_id": cid, "method": method, "url": url, "body": body}
            key = next(k for k, v in values.items() if v is None)
            return BatchError("missing_required_parameter", f"Missing required parameter: '{key}'.", key, n)
        if type(cid) is not str or type(method) is not str or type(url) is not str or type(body) is not dict:
            return _first_type_error(cid, method, url, body, n)
        if not cid:
            return BatchError("invalid_value", "The custom_id must be a non-empty string.", "custom_id", n)
        if len(cid) > 512:
            return BatchError("invalid_value", "The custom_id must be at most 512 characters.", "custom_id", n)
        if method != "POST" and method.upper() != "POST":
            return BatchError(
                "invalid_value", f"Invalid value: '{method}'. Only 'POST' is supported.", "method", n
            )
        if url != self.endpoint:
            return BatchError(
                "invalid_url", "The URL provided for this request does not match the batch endpoint.", "url", n
            )
        return self._check_body(n, body)

    def _check_body(self, n: int, body: dict[str, Any]) -> BatchError | None:
        if body.get("stream") is True:
            label = _ENDPOINT_LABEL[self.endpoint]
            return BatchError(
                "streaming_unsupported", f"{label}: Streaming is not supported in the Batch API.", "body.stream", n
            )
        model = body.get("model")
        if model is None or model == "":
            return BatchError("invalid_request", "Model parameter is required.", "body.model", n)
        if not isinstance(model, str):
            return _type_error("body.model", "a string", model, n)
        for req in _REQUIRED_INPUT[self.endpoint]:
            value = body.get(req.name)
            if value is None:
                return BatchError("invalid_request", req.missing, f"body.{req.name}", n)
            if req.non_empty_array is not None and not (isinstance(value, list) and value):
                return BatchError("invalid_request", req.non_empty_array, f"body.{req.name}", n)
        if self.endpoint == "/v1/embeddings":
            self.embedding_inputs += _count_inputs(body["input"])
        if self.model is None:
            self.model = model
        elif model != self.model:
            return BatchError(
                "model_mismatch",
                f"All requests in a batch must use the same model: this line uses '{model}', "
                f"the first request uses '{self.model}'.",
                "body.model",
                n,
            )
        if model not in self._model_verdicts:
            self._model_verdicts[model] = self._verdict(model)
        verdict = self._model_verdicts[model]
        return None if verdict is None else replace(verdict, line=n)

    def _verdict(self, model: str) -> BatchError | None:
        """Whether `model` can run this batch at all: the same answer for every line, so asked once."""
        reason = self.check_model(model)
        if reason is not None:
            return BatchError("model_not_found", reason, "body.model")
        reason = self.check_endpoint(model) if self.check_endpoint is not None else None
        if reason is not None:
            return BatchError("unsupported_endpoint", reason, "url")
        return None


def _duplicate(n: int) -> BatchError:
    return BatchError(
        "duplicate_custom_id",
        "The custom_id for this request is a duplicate of another request. "
        "The custom_id parameter must be unique for each request in a batch.",
        "custom_id",
        n,
    )


def _line(e: BatchError) -> int:
    return e.line or 0


def _first_type_error(cid: object, method: object, url: object, body: object, n: int) -> BatchError:
    for key, value in (("custom_id", cid), ("method", method), ("url", url)):
        if not isinstance(value, str):
            return _type_error(key, "a string", value, n)
    return _type_error("body", "an object", body, n)


def _type_error(param: str, expected: str, got: object, n: int) -> BatchError:
    return BatchError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {json_type_name(got)} instead.",
        param,
        n,
    )


def _count_inputs(value: Any) -> int:
    """Embedding inputs in one request: a string, a token array, or a list of either."""
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return len(value)
    return 1


def peek_is_jsonl(head: bytes) -> bool:
    """Whether the first non-blank line of a file's head is a JSON object (the upload-time format check)."""
    start = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    for line in start.split(b"\n"):
        if not line.strip():
            continue
        try:
            return isinstance(orjson.loads(line), dict)
        except orjson.JSONDecodeError:
            return False
    return False
