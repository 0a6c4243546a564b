"""Which batch endpoints a route serves: an HTTP upstream all of them (or its routing file's `endpoints`), the
local engine what each model implements."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgate.domain.batch import ENDPOINTS
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.wiring.routes import build_router


def test_an_http_upstream_serves_every_batch_endpoint() -> None:
    router = build_router(Settings(upstream="http://127.0.0.1:9/v1"))
    assert all(router.check_endpoint("any-model", e) is None for e in ENDPOINTS)


def test_the_local_engine_serves_what_each_model_implements() -> None:
    router = build_router(Settings())
    assert router.check_endpoint("echo", "/v1/completions") is None
    assert router.check_endpoint("hash", "/v1/embeddings") is None
    assert router.check_endpoint("echo", "/v1/embeddings") == (
        "Model 'echo' (local engine) does not serve /v1/embeddings; it serves /v1/chat/completions, /v1/completions."
    )
    assert router.check_endpoint("hash", "/v1/videos") == (
        "Model 'hash' (local engine) does not serve /v1/videos; it serves /v1/embeddings."
    )


def test_a_routing_file_restricts_endpoints_per_route(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text("""
[[upstreams]]
name = "img"
url = "http://127.0.0.1:9/v1"
models = ["gpt-image-*"]
endpoints = ["/v1/images/generations"]

[[upstreams]]
name = "local"
type = "local"
endpoints = ["/v1/chat/completions"]
""")
    router = build_router(Settings(config=config))
    assert router.check_endpoint("gpt-image-1", "/v1/images/generations") is None
    assert router.check_endpoint("gpt-image-1", "/v1/images/edits") == (
        "Model 'gpt-image-1' (upstream 'img') does not serve /v1/images/edits; it serves /v1/images/generations."
    )
    assert router.check_endpoint("echo", "/v1/chat/completions") is None
    assert router.check_endpoint("echo", "/v1/completions") == (
        "Model 'echo' (local engine) does not serve /v1/completions; it serves /v1/chat/completions."
    )
    assert router.check_endpoint("hash", "/v1/embeddings") == (
        "Model 'hash' (local engine) does not serve /v1/embeddings; it serves no batch endpoint."
    )


@pytest.mark.parametrize(("value", "reason"), [
    ('["/v1/nope"]', "endpoints[0]: '/v1/nope' is not a batch endpoint"),
    ('"/v1/videos"', "endpoints: must be a non-empty list of batch endpoints, not '/v1/videos'"),
    ("[]", "endpoints: must be a non-empty list of batch endpoints, not []"),
    ('["videos"]', "endpoints[0]: 'videos' is not a batch endpoint (did you mean '/v1/videos'?)"),
])
def test_a_bad_endpoints_list_is_refused_at_startup(tmp_path: Path, value: str, reason: str) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(f'[[upstreams]]\nname = "u"\nurl = "http://127.0.0.1:9/v1"\nendpoints = {value}\n')
    with pytest.raises(ConfigError) as caught:
        build_router(Settings(config=config))
    assert str(caught.value).startswith(f"{config}: upstreams[0] ('u'): {reason}")


def test_anthropic_messages_run_natively_or_translated_per_route(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text("""
[[upstreams]]
name = "vllm"
url = "http://127.0.0.1:9/v1"
models = ["qwen*"]
messages = "native"

[[upstreams]]
name = "other"
url = "http://127.0.0.1:8/v1"
""")
    router = build_router(Settings(config=config))
    vllm, other = router.routes
    assert (vllm.executor.messages, other.executor.messages) == ("native", "translate")  # type: ignore[attr-defined]
    assert router.check_endpoint("qwen3", "/v1/messages") is None
    assert router.check_endpoint("anything", "/v1/messages") is None
    assert build_router(Settings()).check_endpoint("echo", "/v1/messages") is None
    assert build_router(Settings()).check_endpoint("hash", "/v1/messages") == (
        "Model 'hash' (local engine) does not serve /v1/messages; it serves /v1/embeddings."
    )
    assert build_router(Settings()).check_endpoint("echo", "/v1/embeddings") == (
        "Model 'echo' (local engine) does not serve /v1/embeddings; it serves /v1/chat/completions, /v1/completions."
    )  # an OpenAI batch is not told of /v1/messages, which POST /v1/batches does not take
    native = build_router(Settings(upstream="http://127.0.0.1:9/v1", upstream_messages="native"))
    assert native.routes[0].executor.messages == "native"  # type: ignore[attr-defined]
    config.write_text("""
[[upstreams]]
url = "http://127.0.0.1:9/v1"
messages = "sometimes"
""")
    with pytest.raises(ConfigError, match="messages: must be \"native\""):
        build_router(Settings(config=config))
