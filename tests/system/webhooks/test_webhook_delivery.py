"""Webhooks end to end: `batchgate serve` sends signed events to a real receiver on loopback, and the events are
checked with the `standardwebhooks` package (an implementation of the spec that is not ours)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from harness import BatchgateServer, create_key
from helpers import assert_envelope, chat_line, raw, raw_json, run_batch, submit_batch, unique, wait_for_batch
from openai import OpenAI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .webhook_receiver import Receiver

# Short retries so a receiver that fails twice is served on its third attempt within a few seconds.
SERVER_ENV = {"BATCHGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.2", "BATCHGATE_WEBHOOK_RETRY_MAX_SECONDS": "1.5",
              "BATCHGATE_WEBHOOK_MAX_ATTEMPTS": "4", "BATCHGATE_WEBHOOK_TIMEOUT": "5"}
QUIET = 1.0  # seconds to keep listening after the expected requests, to catch a duplicate


@dataclass
class Setup:
    server: BatchgateServer
    receiver: Receiver
    alpha_key: str
    beta_key: str
    alpha: OpenAI
    beta: OpenAI


@pytest.fixture(scope="module")
def setup(module_server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    data_dir = tmp_path_factory.mktemp("webhooks") / "data"
    alpha_key, beta_key = create_key(data_dir, "alpha"), create_key(data_dir, "beta")
    server = module_server_factory(data_dir=data_dir, env=SERVER_ENV)
    receiver = Receiver()
    try:
        yield Setup(server, receiver, alpha_key, beta_key, server.client(api_key=alpha_key),
                    server.client(api_key=beta_key))
    finally:
        receiver.stop()


Hook = Callable[..., dict[str, Any]]


@pytest.fixture
def hook(setup: Setup) -> Iterator[Hook]:
    """`hook(key, path, events=None)` registers an endpoint on the receiver; deleted after the test."""
    made: list[tuple[str, str]] = []

    def make(key: str, path: str, events: list[str] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"url": setup.receiver.url(path)}
        if events is not None:
            payload["events"] = events
        response = raw_json(setup.server.base_url, "POST", "/webhooks", payload, api_key=key)
        assert response.status == 200, response.body
        created: dict[str, Any] = response.json()
        made.append((key, created["id"]))
        return created

    yield make
    for key, endpoint_id in made:
        raw(setup.server.base_url, "DELETE", f"/webhooks/{endpoint_id}", api_key=key)


def verified(secret: str, request: Any) -> dict[str, Any]:
    event: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return event


def deliveries(setup: Setup, key: str, batch_id: str) -> list[dict[str, Any]]:
    response = raw(setup.server.base_url, "GET", f"/batches/{batch_id}/webhook_deliveries", api_key=key)
    assert response.status == 200, response.body
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_endpoints_are_created_listed_and_deleted_per_project(setup: Setup, hook: Hook) -> None:
    base = setup.server.base_url
    created = hook(setup.alpha_key, unique("crud"))
    assert created["id"].startswith("we_") and created["object"] == "webhook_endpoint"
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["batch.completed", "batch.failed", "batch.expired", "batch.cancelled"]
    only = hook(setup.alpha_key, unique("crud"), events=["batch.cancelled", "batch.failed"])
    assert only["events"] == ["batch.failed", "batch.cancelled"]

    listed = raw(base, "GET", "/webhooks", api_key=setup.alpha_key).json()["data"]
    assert {e["id"] for e in listed} >= {created["id"], only["id"]}
    assert all("secret" not in e for e in listed)  # shown once, at creation
    assert not {e["id"] for e in raw(base, "GET", "/webhooks", api_key=setup.beta_key).json()["data"]} & {
        created["id"], only["id"]}

    assert_envelope(raw(base, "DELETE", f"/webhooks/{created['id']}", api_key=setup.beta_key), 404)
    gone = raw(base, "DELETE", f"/webhooks/{created['id']}", api_key=setup.alpha_key)
    assert gone.status == 200 and gone.json() == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert_envelope(raw(base, "DELETE", f"/webhooks/{created['id']}", api_key=setup.alpha_key), 404)
    for method, path in (("GET", "/webhooks"), ("POST", "/webhooks"), ("DELETE", f"/webhooks/{only['id']}"),
                         ("GET", "/batches/batch_x/webhook_deliveries")):
        assert_envelope(raw(base, method, path, api_key=None), 401)


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/hook", "file:///etc/passwd", "javascript:alert(1)", "gopher://x", "http://", "http:///x",
    "http://exa mple.com/", "http://127.0.0.1:99999/", "//example.com/hook", "x" * 3000,
])
def test_only_http_urls_are_accepted(setup: Setup, url: str) -> None:
    response = raw_json(setup.server.base_url, "POST", "/webhooks", {"url": url}, api_key=setup.alpha_key)
    assert_envelope(response, 400, code="invalid_value", param="url")


@pytest.mark.parametrize(("payload", "param"), [
    ({}, "url"), ({"url": 5}, "url"), ({"url": "http://127.0.0.1/x", "events": "batch.completed"}, "events"),
    ({"url": "http://127.0.0.1/x", "events": []}, "events"),
    ({"url": "http://127.0.0.1/x", "events": ["batch.started"]}, "events"),
])
def test_bad_parameters_are_refused(setup: Setup, payload: dict[str, Any], param: str) -> None:
    response = raw_json(setup.server.base_url, "POST", "/webhooks", payload, api_key=setup.alpha_key)
    assert_envelope(response, 400, param=param)


def test_completed_batch_sends_exactly_one_signed_event(setup: Setup, hook: Hook) -> None:
    path, beta_path = unique("completed"), unique("beta")
    endpoint = hook(setup.alpha_key, path)
    hook(setup.beta_key, beta_path)
    batch = run_batch(setup.alpha, [chat_line("a"), chat_line("b")])
    assert batch.status == "completed"

    (request,) = setup.receiver.wait_for(path, 1)
    event = verified(endpoint["secret"], request)
    assert event == {"id": event["id"], "object": "event", "type": "batch.completed",
                     "created_at": batch.completed_at, "data": {"id": batch.id}}
    assert event["id"].startswith("evt_")
    assert request.headers["Content-Type"] == "application/json"
    time.sleep(QUIET)
    assert len(setup.receiver.requests(path)) == 1
    assert setup.receiver.requests(beta_path) == []  # another project's endpoint hears nothing

    (delivery,) = deliveries(setup, setup.alpha_key, batch.id)
    assert delivery["id"] == request.headers["webhook-id"] and delivery["endpoint_id"] == endpoint["id"]
    assert delivery["status"] == "delivered" and delivery["event"] == event and delivery["next_attempt_at"] is None
    (attempt,) = delivery["attempts"]
    assert attempt["number"] == 1 and attempt["status_code"] == 200 and attempt["error"] is None
    assert attempt["duration_ms"] >= 0 and abs(attempt["at"] - request.at) < 5
    # another project's key cannot see the batch, so not its deliveries either
    assert_envelope(raw(setup.server.base_url, "GET", f"/batches/{batch.id}/webhook_deliveries",
                        api_key=setup.beta_key), 404)


def test_a_wrong_secret_or_a_changed_body_fails_verification(setup: Setup, hook: Hook) -> None:
    path = unique("verify")
    endpoint = hook(setup.alpha_key, path)
    stranger = hook(setup.alpha_key, unique("stranger"))
    run_batch(setup.alpha, [chat_line("v")])
    (request,) = setup.receiver.wait_for(path, 1)
    verified(endpoint["secret"], request)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger["secret"]).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body.replace(b"batch_", b"batcx_"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body, {**request.headers, "webhook-id": "msg_other"})


def test_cancelled_batch_sends_exactly_one_event_to_subscribed_endpoints(setup: Setup, hook: Hook) -> None:
    path, completed_only = unique("cancelled"), unique("completed-only")
    endpoint = hook(setup.alpha_key, path, events=["batch.cancelled"])
    hook(setup.alpha_key, completed_only, events=["batch.completed"])
    batch = submit_batch(setup.alpha, [chat_line("slow", x_fake={"hang": True})])
    setup.alpha.batches.cancel(batch.id)
    done = wait_for_batch(setup.alpha, batch.id)
    assert done.status == "cancelled"

    (request,) = setup.receiver.wait_for(path, 1)
    event = verified(endpoint["secret"], request)
    assert event["type"] == "batch.cancelled" and event["data"] == {"id": batch.id}
    assert event["created_at"] == done.cancelled_at
    time.sleep(QUIET)
    assert len(setup.receiver.requests(path)) == 1
    assert all(json.loads(r.body)["data"]["id"] != batch.id for r in setup.receiver.requests(completed_only))


def test_failed_batch_sends_batch_failed(setup: Setup, hook: Hook) -> None:
    path = unique("failed")
    endpoint = hook(setup.alpha_key, path)
    batch = run_batch(setup.alpha, [chat_line("fine"), "not json at all"])
    assert batch.status == "failed"
    (request,) = setup.receiver.wait_for(path, 1)
    event = verified(endpoint["secret"], request)
    assert event["type"] == "batch.failed" and event["data"] == {"id": batch.id}


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(setup: Setup, hook: Hook) -> None:
    path = unique("flaky")
    setup.receiver.plan(path, [500, 500])
    endpoint = hook(setup.alpha_key, path)
    batch = run_batch(setup.alpha, [chat_line("r")])

    requests = setup.receiver.wait_for(path, 3)
    assert [r.answered for r in requests] == [500, 500, 200]
    assert len({r.headers["webhook-id"] for r in requests}) == 1  # one message, retried
    events = [verified(endpoint["secret"], r) for r in requests]  # each attempt signed afresh
    assert all(e == events[0] for e in events) and events[0]["data"] == {"id": batch.id}
    # backoff: 0.2 s then 1.2 s, each +-25%
    assert requests[1].at - requests[0].at >= 0.14 and requests[2].at - requests[1].at >= 0.9
    time.sleep(QUIET)
    assert len(setup.receiver.requests(path)) == 3

    (delivery,) = deliveries(setup, setup.alpha_key, batch.id)
    assert delivery["status"] == "delivered"
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [(1, 500), (2, 500), (3, 200)]
    assert all(isinstance(a["duration_ms"], int) for a in delivery["attempts"])


def test_unreachable_receiver_is_given_up_after_max_attempts(setup: Setup, hook: Hook) -> None:
    path = unique("down")
    setup.receiver.plan(path, [503] * 10)
    hook(setup.alpha_key, path)
    batch = run_batch(setup.alpha, [chat_line("d")])
    setup.receiver.wait_for(path, 3)
    deadline = time.monotonic() + 20
    while (found := deliveries(setup, setup.alpha_key, batch.id)) and found[0]["status"] == "pending":
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    (delivery,) = found
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503, 503]  # BATCHGATE_WEBHOOK_MAX_ATTEMPTS
