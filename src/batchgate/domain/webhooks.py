"""Webhooks: endpoints a project registers, the events batchgate sends them, and when to try again."""

from __future__ import annotations

import ipaddress
import random
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum

from batchgate.domain.status import TERMINAL, BatchStatus

_RNG = random.Random()

# One event per terminal status, named like OpenAI's webhook events.
EVENT_TYPES: tuple[str, ...] = ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled")


def event_type(status: BatchStatus) -> str:
    """The event a batch entering terminal `status` sends."""
    if status not in TERMINAL:
        raise ValueError(f"{status.value} is not a terminal status")
    return f"batch.{status.value}"


MAX_URL_LENGTH = 2048


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why `url` may not receive webhooks, or None. Only http and https, ever; with `allow_private` False, no
    literal loopback, private or link-local address either (names are checked when they are resolved)."""
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return f"The webhook URL must be at most {MAX_URL_LENGTH} characters, without spaces or control characters."
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        return "The webhook URL is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "The webhook URL must start with http:// or https://."
    if not host:
        return "The webhook URL must name a host."
    if not allow_private and is_private_host(host):
        return "The webhook URL points at a private or loopback address, which this server does not allow."
    return None


def is_private_host(host: str) -> bool:
    """A literal address that is not globally routable, or a name for this machine."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False  # a name: its addresses are checked at delivery


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not acknowledged yet; tried again at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx; terminal
    FAILED = "failed"  # every attempt failed; terminal
    DISCARDED = "discarded"  # its endpoint was deleted before it was acknowledged; terminal


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    project: str
    url: str
    secret: str  # whsec_<base64>; shown to the caller once, kept to sign every delivery
    events: tuple[str, ...]
    created_at: int

    def wants(self, event: str) -> bool:
        return event in self.events


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    number: int  # 1 for the first try
    at: float  # when the request was sent (unix seconds)
    status_code: int | None  # the receiver's HTTP status; None when no answer came
    error: str | None  # why no answer came (timeout, refused, ...), or why the answer did not count
    duration_ms: int


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event on its way to one endpoint. Its id is the `webhook-id` header, the same on every retry."""

    id: str
    endpoint_id: str
    project: str
    url: str
    batch_id: str
    event_id: str
    event_type: str
    created_at: int
    status: DeliveryStatus
    next_attempt_at: float | None  # None once the delivery is settled
    attempts: tuple[DeliveryAttempt, ...] = ()

    def payload(self) -> dict[str, object]:
        """The event as sent: OpenAI's shape, rebuilt identically for every attempt."""
        return {"id": self.event_id, "object": "event", "type": self.event_type, "created_at": self.created_at,
                "data": {"id": self.batch_id}}


@dataclass(frozen=True, slots=True)
class DeliveryClaim:
    """A delivery a worker may send now, with what it needs to sign it."""

    delivery: WebhookDelivery
    secret: str | None  # None: the endpoint was deleted meanwhile
    attempts_made: int
    generation: int  # fencing token, as for chunks


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Exponential backoff with jitter: with the defaults about 5 s, 30 s, 3 min, 18 min, 1.8 h, then every 6 h,
    about three days in all before a delivery is given up."""

    max_attempts: int = 18
    base_seconds: float = 5.0
    max_seconds: float = 6 * 3600.0
    factor: float = 6.0

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after `attempts_made` failed attempts (counted from 1), jittered by +-25%."""
        r = rng or _RNG
        plain = min(self.max_seconds, self.base_seconds * self.factor ** min(attempts_made - 1, 64))
        return plain * r.uniform(0.75, 1.25)

    def gives_up_after(self, attempts_made: int) -> bool:
        return attempts_made >= self.max_attempts
