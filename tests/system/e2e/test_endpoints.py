"""The image and video batch endpoints pass through to an upstream; an endpoint the routed engine cannot serve
fails validation, naming what it does serve, instead of failing every line at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import FakeUpstream
from helpers import MODERATIONS, RESPONSES, assert_exactly_once, raw_json, run_batch, unique
from openai import OpenAI

IMAGES = "/v1/images/generations"
EDITS = "/v1/images/edits"
VIDEOS = "/v1/videos"
# Fields the fake fills with the time it answered: the only ones a direct call can't reproduce.
CLOCK_FIELDS = ("created", "created_at")


def line(cid: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": cid, "method": "POST", "url": url, "body": body}


def without_clock(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in CLOCK_FIELDS}


def direct(fake: FakeUpstream, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the upstream answers the same body when asked without batchgate."""
    answer = raw_json(fake.base_url, "POST", endpoint.removeprefix("/v1"), body, api_key="sk-x")
    assert answer.status == 200
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.parametrize(("endpoint", "body"), [
    (IMAGES, {"model": "gpt-image-1", "prompt": "a lighthouse at dusk", "n": 2, "size": "1024x1024"}),
    (EDITS, {"model": "gpt-image-1", "prompt": "add a red boat",
             "images": [{"image_url": "https://example.com/harbour.png"}]}),
])
def test_image_batches_store_the_upstreams_bodies(
    client: OpenAI, fake_upstream: FakeUpstream, endpoint: str, body: dict[str, Any]
) -> None:
    ids = [unique("img") for _ in range(3)]
    bodies = {cid: {**body, "prompt": f"{body['prompt']} {cid}"} for cid in ids}
    batch = run_batch(client, [line(cid, endpoint, bodies[cid]) for cid in ids], endpoint=endpoint)
    assert batch.status == "completed", batch
    assert batch.endpoint == endpoint and batch.model == "gpt-image-1"
    outputs, _ = assert_exactly_once(client, batch, ids)
    assert fake_upstream.stats()["by_path"] == {endpoint.removeprefix("/v1/"): len(ids)}  # the path, as is
    usage_in = usage_out = 0
    for cid in ids:
        response = outputs[cid]["response"]
        assert response["status_code"] == 200
        stored = response["body"]
        assert without_clock(stored) == without_clock(direct(fake_upstream, endpoint, bodies[cid]))
        assert stored["data"][0]["b64_json"] and stored["data"][0]["revised_prompt"] == bodies[cid]["prompt"]
        assert len(stored["data"]) == body.get("n", 1)
        usage_in += stored["usage"]["input_tokens"]
        usage_out += stored["usage"]["output_tokens"]
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens) == (usage_in, usage_out)


def test_video_batch_stores_the_upstreams_jobs(client: OpenAI, fake_upstream: FakeUpstream) -> None:
    ids = [unique("vid") for _ in range(3)]
    bodies = {cid: {"model": "sora-2", "prompt": f"waves on a beach {cid}", "seconds": "8"} for cid in ids}
    batch = run_batch(client, [line(cid, VIDEOS, bodies[cid]) for cid in ids], endpoint=VIDEOS)
    assert batch.status == "completed", batch
    assert batch.endpoint == VIDEOS and batch.model == "sora-2"
    outputs, _ = assert_exactly_once(client, batch, ids)
    assert fake_upstream.stats()["by_path"] == {"videos": len(ids)}
    for cid in ids:
        stored = outputs[cid]["response"]["body"]
        assert stored["object"] == "video" and stored["status"] == "queued" and stored["id"].startswith("video_")
        assert stored["prompt"] == bodies[cid]["prompt"] and stored["seconds"] == "8"
        assert without_clock(stored) == without_clock(direct(fake_upstream, VIDEOS, bodies[cid]))


@pytest.mark.parametrize(("endpoint", "body", "param"), [
    (IMAGES, {"model": "gpt-image-1", "size": "1024x1024"}, "body.prompt"),
    (EDITS, {"model": "gpt-image-1", "prompt": "add a boat"}, "body.images"),
    (EDITS, {"model": "gpt-image-1", "prompt": "add a boat", "images": []}, "body.images"),
    (VIDEOS, {"model": "sora-2", "seconds": "4"}, "body.prompt"),
])
def test_a_line_without_its_required_field_fails_validation(
    client: OpenAI, fake_upstream: FakeUpstream, endpoint: str, body: dict[str, Any], param: str
) -> None:
    batch = run_batch(client, [line("a", endpoint, body)], endpoint=endpoint)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.param, e.line) for e in batch.errors.data] == [("invalid_request", param, 1)]
    assert fake_upstream.stats()["total"] == 0


@pytest.fixture(scope="module")
def local_server(module_server_factory: Any) -> Any:
    return module_server_factory(upstream=None)


@pytest.mark.parametrize(("endpoint", "model", "body", "serves"), [
    (MODERATIONS, "echo", {"input": "is this fine?"}, "/v1/chat/completions, /v1/completions"),
    (RESPONSES, "echo", {"input": "hello"}, "/v1/chat/completions, /v1/completions"),
    (IMAGES, "echo", {"prompt": "a cat"}, "/v1/chat/completions, /v1/completions"),
    (MODERATIONS, "hash", {"input": "is this fine?"}, "/v1/embeddings"),
])
def test_an_endpoint_the_local_model_does_not_serve_fails_validation(
    local_server: Any, endpoint: str, model: str, body: dict[str, Any], serves: str
) -> None:
    client = local_server.client()
    lines = [line(f"m{i}", endpoint, {"model": model, **body}) for i in range(3)]
    batch = run_batch(client, lines, endpoint=endpoint)
    assert batch.status == "failed", batch
    assert batch.in_progress_at is None and batch.output_file_id is None and batch.error_file_id is None
    assert batch.errors is not None and batch.errors.data is not None
    assert [(e.code, e.param, e.line) for e in batch.errors.data] == [("unsupported_endpoint", "url", n)
                                                                       for n in (1, 2, 3)]
    assert batch.errors.data[0].message == (
        f"Model '{model}' (local engine) does not serve {endpoint}; it serves {serves}."
    )


def test_a_routing_file_can_restrict_an_upstreams_endpoints(
    server_factory: Any, fake_upstream_factory: Any, tmp_path: Path
) -> None:
    fake = fake_upstream_factory()
    config = tmp_path / "batchgate.toml"
    config.write_text(f"""
[[upstreams]]
name = "images-only"
url = "{fake.base_url}"
models = ["gpt-image-*"]
endpoints = ["/v1/images/generations", "/v1/images/edits"]

[[upstreams]]
name = "rest"
url = "{fake.base_url}"
""")
    client = server_factory(upstream=None, args=["--config", str(config)]).client()
    refused = run_batch(client, [line("v", VIDEOS, {"model": "gpt-image-1", "prompt": "waves"})], endpoint=VIDEOS)
    assert refused.status == "failed"
    assert refused.errors is not None and refused.errors.data is not None
    [err] = refused.errors.data
    assert (err.code, err.param, err.line) == ("unsupported_endpoint", "url", 1)
    assert err.message == ("Model 'gpt-image-1' (upstream 'images-only') does not serve /v1/videos; it serves "
                           "/v1/images/generations, /v1/images/edits.")
    served = run_batch(client, [line("i", IMAGES, {"model": "gpt-image-1", "prompt": "waves"})], endpoint=IMAGES)
    assert served.status == "completed"
    other = run_batch(client, [line("v", VIDEOS, {"model": "sora-2", "prompt": "waves"})], endpoint=VIDEOS)
    assert other.status == "completed"  # the route without `endpoints` serves them all
    assert fake.stats()["by_path"] == {"images/generations": 1, "videos": 1}
