"""Logging for `serve`, `worker` and the client commands: text for people, JSON lines for log pipelines.

Every line logged while an API request is handled carries that request's id (the `x-request-id` the client
saw), and every line of the worker's work on a batch carries the batch id: both travel in context variables,
which asyncio copies into each task, so nothing has to pass them along by hand."""

from __future__ import annotations

import logging
import re
import sys
import time
import urllib.parse
from contextvars import ContextVar
from typing import TextIO

import orjson

request_id: ContextVar[str | None] = ContextVar("batchgate_request_id", default=None)
batch_id: ContextVar[str | None] = ContextVar("batchgate_batch_id", default=None)

# Defence in depth: nothing of ours logs credentials, but a library's message or an exception's text might.
_SECRETS = re.compile(r"(?i)(bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)[^\s\"',;]+"
                      r"|(\bbg-)[A-Za-z0-9_-]{16,}")
# The standard attributes of a LogRecord; anything else a caller passed with `extra=` is kept as a field.
# (uvicorn's `color_message` is the same message with terminal colour codes.)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message"}


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2)) + "[redacted]", text)


def redact_url(url: str) -> str:
    """`url` as it may be printed: a password in its userinfo, and query parameters that look like credentials
    (libpq takes `?password=`), become `***`; the rest stays, so the URL still says where it points."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(an unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, where = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{where}"
    query = "&".join(_redact_param(p) for p in parts.query.split("&")) if parts.query else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def _redact_param(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    secret = eq and any(word in name.lower() for word in ("pass", "secret", "token", "key"))
    return f"{name}=***" if secret else pair


class _Context(logging.Filter):
    """Copies the context variables onto each record, for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.batch_id = getattr(record, "batch_id", None) or batch_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id / batch_id when known, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("request_id", "batch_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key not in ("request_id", "batch_id"):
                shown = value if isinstance(value, (int, float, bool)) or value is None else redact(str(value))
                out[key] = shown
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact(super().format(record))
        ids = " ".join(f"{k}={v}" for k in ("request_id", "batch_id") if (v := getattr(record, k, None)))
        return f"{line} [{ids}]" if ids else line


def handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `fmt` lines (text or json) with the context's ids to `stream` (stderr)."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    out.addFilter(_Context())
    return out


def configure(level: str, fmt: str = "text") -> None:
    """Send every logger (uvicorn's included: run it with log_config=None) to stderr in one format."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(fmt))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
