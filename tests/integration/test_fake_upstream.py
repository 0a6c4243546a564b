"""The fake upstream itself: bodies, per-request misbehaviour, global knobs, counters."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from harness import FakeUpstream
from helpers import RawResponse, raw, raw_json


@pytest.fixture
def fake(fake_upstream_factory: Any) -> Iterator[FakeUpstream]:
    yield fake_upstream_factory()


def post(fake: FakeUpstream, path: str, body: Any, timeout: float = 10.0, key: str | None = "sk-x") -> RawResponse:
    return raw_json(fake.base_url, "POST", path, body, api_key=key, timeout=timeout)


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def test_chat_completion_body_and_headers(fake: FakeUpstream) -> None:
    response = post(fake, "/chat/completions", chat("hello world"))
    assert response.status == 200
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"]["content"] == "echo: hello world"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert post(fake, "/chat/completions", chat("hello world")).json()["id"] == body["id"]  # deterministic
    stats = fake.stats()
    assert stats["total"] == 2
    assert stats["by_key"] == {"hello world": 2}
    assert stats["auth"] == {"Bearer sk-x": 2}
    assert stats["models"] == {"gpt-4o-mini": 2}
    assert response.headers["x-request-id"] in stats["request_ids_by_key"]["hello world"]


@pytest.mark.parametrize(
    ("path", "body", "object_field"),
    [
        ("/embeddings", {"model": "e", "input": ["a", "b c"]}, "list"),
        ("/completions", {"model": "m", "prompt": "say"}, "text_completion"),
        ("/responses", {"model": "m", "input": "hi"}, "response"),
    ],
)
def test_other_endpoints(fake: FakeUpstream, path: str, body: dict[str, Any], object_field: str) -> None:
    response = post(fake, path, body)
    assert response.status == 200
    assert response.json()["object"] == object_field
    assert "usage" in response.json()


def test_embeddings_one_vector_per_input(fake: FakeUpstream) -> None:
    body = post(fake, "/embeddings", {"model": "e", "input": ["a", "b c", "d"], "dimensions": 4}).json()
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(len(d["embedding"]) == 4 for d in body["data"])
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


def test_moderations(fake: FakeUpstream) -> None:
    body = post(fake, "/moderations", {"input": ["x", "y"]}).json()
    assert len(body["results"]) == 2
    assert body["results"][0]["flagged"] is False


@pytest.mark.parametrize("path", ["/images/generations", "/images/edits"])
def test_images_are_png_b64_json(fake: FakeUpstream, path: str) -> None:
    body = post(fake, path, {"model": "gpt-image-1", "prompt": "a cat", "n": 2,
                             "images": [{"image_url": "https://example.com/a.png"}]}).json()
    assert isinstance(body["created"], int)
    assert len(body["data"]) == 2
    png = base64.b64decode(body["data"][0]["b64_json"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    assert body["data"][0]["revised_prompt"] == "a cat"
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]


def test_videos_answer_a_queued_job(fake: FakeUpstream) -> None:
    body = post(fake, "/videos", {"model": "sora-2", "prompt": "waves", "seconds": "8"}).json()
    assert body["object"] == "video" and body["status"] == "queued" and body["id"].startswith("video_")
    assert (body["model"], body["prompt"], body["seconds"], body["error"]) == ("sora-2", "waves", "8", None)


def test_fail_times_then_success(fake: FakeUpstream) -> None:
    body = chat("x", x_fake={"fail_times": 2, "status": 503, "key": "k1"})
    assert [post(fake, "/chat/completions", body).status for _ in range(3)] == [503, 503, 200]
    assert fake.stats()["by_key"] == {"k1": 3}


def test_permanent_status_and_body(fake: FakeUpstream) -> None:
    error = {"error": {"message": "bad", "type": "invalid_request_error", "param": "messages", "code": "x"}}
    body = chat("x", x_fake={"status": 400, "body": error})
    for _ in range(2):
        response = post(fake, "/chat/completions", body)
        assert response.status == 400
        assert response.json() == error


def test_429_with_retry_after(fake: FakeUpstream) -> None:
    response = post(fake, "/chat/completions", chat("x", x_fake={"fail_times": 1, "status": 429, "retry_after": 1}))
    assert response.status == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_drop_times_closes_connection(fake: FakeUpstream) -> None:
    body = chat("x", x_fake={"drop_times": 1, "key": "d"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        post(fake, "/chat/completions", body)
    assert post(fake, "/chat/completions", body).status == 200
    assert fake.stats()["dropped"] == 1


def test_hang_until_client_gives_up(fake: FakeUpstream) -> None:
    with pytest.raises((TimeoutError, socket.timeout)):
        post(fake, "/chat/completions", chat("x", x_fake={"hang": True}), timeout=0.5)
    stats = fake.stats()
    assert stats["hung"] == 1
    # The fake notices the closed connection and forgets the request.
    for _ in range(50):
        if fake.stats()["in_flight"] == 0:
            break
        threading.Event().wait(0.05)
    assert fake.stats()["in_flight"] == 0


def test_global_knobs_and_reset(fake: FakeUpstream) -> None:
    fake.control(error_rate=1.0)
    assert fake.knobs()["error_rate"] == 1.0
    assert post(fake, "/chat/completions", chat("x")).status == 500
    fake.control(error_rate=0.0, rate_429=1.0, retry_after=2)
    response = post(fake, "/chat/completions", chat("x"))
    assert (response.status, response.headers["retry-after"]) == (429, "2")
    fake.reset()
    assert fake.knobs()["rate_429"] == 0.0
    assert fake.stats()["total"] == 0
    assert post(fake, "/chat/completions", chat("x")).status == 200


def test_seeded_rates_are_reproducible(fake: FakeUpstream) -> None:
    def run() -> list[int]:
        fake.control(seed=7, error_rate=0.5)
        return [post(fake, "/chat/completions", chat(str(i))).status for i in range(20)]

    first = run()
    assert first == run()
    assert {200, 500} == set(first)


def test_unknown_knob_rejected(fake: FakeUpstream) -> None:
    response = raw_json(fake.url, "POST", "/_control", {"nope": 1}, api_key=None)
    assert response.status == 400


def test_max_in_flight(fake: FakeUpstream) -> None:
    fake.control(latency=0.3)
    threads = [threading.Thread(target=post, args=(fake, "/chat/completions", chat(f"c{i}"))) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = fake.stats()
    assert stats["max_in_flight"] == 5
    assert stats["in_flight"] == 0


def test_key_from_user_field(fake: FakeUpstream) -> None:
    post(fake, "/chat/completions", chat("x", user="u-1"))
    post(fake, "/embeddings", {"model": "e", "input": "text here"})
    assert fake.stats()["by_key"] == {"u-1": 1, "text here": 1}


def test_models_listing(fake: FakeUpstream) -> None:
    response = raw(fake.base_url, "GET", "/models")
    assert response.status == 200
    assert json.loads(response.body)["object"] == "list"
