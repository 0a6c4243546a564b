"""The routing file is read strictly: every unknown key and bad value is one line of one ConfigError that names
the file, the route (index and name), the key and the reason; a good file builds the routes it always did."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchgate.engine.local import LocalEngine
from batchgate.errors import ConfigError
from batchgate.settings import Settings
from batchgate.startup import summary
from batchgate.upstream.http import HttpUpstream
from batchgate.wiring.route_config import HttpRouteConfig, LocalRouteConfig, parse_routing, read_routing_file
from batchgate.wiring.routes import build_router

ENV = {"GPU_B_KEY": "sk-from-env", "EMPTY_KEY": ""}
GOOD = """
[[upstreams]]
name = "gpu-a"
url = "http://10.0.0.5:8000/v1/"
api_key = "sk-inline"
models = ["meta-llama/*", "qwen2.5-7b-instruct"]
max_concurrency = 128
endpoints = ["/v1/chat/completions", "/v1/completions"]

[[upstreams]]
name = "gpu-b"
url = "https://gpu-b.internal/v1"
api_key_env = "GPU_B_KEY"
models = "mistral-7b"

[[upstreams]]
url = "http://10.0.0.7/v1"

[[upstreams]]
name = "local"
type = "local"
models = ["*"]
max_concurrency = 500
chat_slots = 2
embed_batch_size = 16
"""


def problem(route_tables: str, environ: dict[str, str] | None = None) -> str:
    """The message of the one ConfigError a routing file with these tables raises."""
    with pytest.raises(ConfigError) as caught:
        parse_routing(route_tables, "routes.toml", ENV if environ is None else environ)
    return str(caught.value)


def test_a_good_file_parses_to_its_routes() -> None:
    a, b, unnamed, local = parse_routing(GOOD, "routes.toml", ENV)
    assert a == HttpRouteConfig(name="gpu-a", url="http://10.0.0.5:8000/v1", api_key="sk-inline",
                                models=["meta-llama/*", "qwen2.5-7b-instruct"], max_concurrency=128,
                                endpoints=["/v1/chat/completions", "/v1/completions"])
    assert (b.name, b.models, b.max_concurrency, b.endpoints) == ("gpu-b", ["mistral-7b"], None, None)
    assert isinstance(b, HttpRouteConfig) and b.key(ENV) == "sk-from-env" and a.key(ENV) == "sk-inline"
    assert isinstance(unnamed, HttpRouteConfig) and unnamed.key(ENV) is None
    assert (unnamed.name, unnamed.models) == ("upstream2", ["*"])
    assert local == LocalRouteConfig(name="local", type="local", models=["*"], max_concurrency=500, chat_slots=2,
                                     embed_batch_size=16)


def test_a_good_file_builds_the_routes_it_always_did(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(GOOD)
    router = build_router(Settings(config=config, upstream_concurrency=64), ENV)
    got = [(r.name, r.patterns, r.max_concurrency, r.endpoints) for r in router.routes]
    assert got == [
        ("gpu-a", ("meta-llama/*", "qwen2.5-7b-instruct"), 128, ("/v1/chat/completions", "/v1/completions")),
        ("gpu-b", ("mistral-7b",), 64, None),  # no max_concurrency: --max-concurrency's value
        ("upstream2", ("*",), 64, None),
        # a route per lane of the engine, each with the lane's window (max_concurrency = 500 does not widen it)
        ("local/chat", ("*",), 4, None),  # chat_slots + 2
        ("local/embeddings", ("*",), 32, None),  # two batches of embed_batch_size
        ("local/builtin", ("*",), 64, None),
    ]
    http = [r.executor for r in router.routes[:3]]
    assert all(isinstance(e, HttpUpstream) for e in http)
    assert [e.base_url for e in http if isinstance(e, HttpUpstream)] == [
        "http://10.0.0.5:8000/v1", "https://gpu-b.internal/v1", "http://10.0.0.7/v1"]
    engine = router.routes[3].executor
    assert isinstance(engine, LocalEngine) and all(r.executor is engine for r in router.routes[3:])
    assert router.resolve("qwen2.5-7b-instruct") is router.routes[0]
    assert router.resolve("mistral-7b") is router.routes[1]
    assert router.resolve("anything-else") is router.routes[2]


def test_urls_make_one_route_of_replicas(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nname = "llama"\nmodels = ["llama-3"]\napi_key_env = "GPU_B_KEY"\n'
                      'urls = ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1/", "http://10.0.0.7:8000/v1"]\n')
    [route] = build_router(Settings(config=config, upstream_concurrency=32), ENV).routes
    replicas = route.pool.replicas
    assert [r.name for r in replicas] == ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1",
                                          "http://10.0.0.7:8000/v1"]
    assert all(isinstance(r.executor, HttpUpstream) for r in replicas)
    assert len({id(r.limiter) for r in replicas}) == 3  # a window each
    assert all(r.limiter.max_limit == 32 for r in replicas)
    assert route.executor is replicas[0].executor


def test_engine_signals_and_priority_reach_the_route(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nname = "vllm"\nurl = "http://10.0.0.5:8000/v1"\nmodels = "a"\n'
                      'engine_metrics = "vllm"\nbatch_priority = 10\n\n'
                      '[[upstreams]]\nname = "pool"\nurls = ["http://10.0.0.6/v1", "http://10.0.0.7/v1"]\n'
                      'models = "b"\n'
                      'engine_metrics_url = "/custom/metrics"\nbatch_priority = -3\n\n'
                      '[[upstreams]]\nname = "plain"\nurl = "http://10.0.0.8/v1"\n')
    vllm, pool, plain = build_router(Settings(config=config), {}).routes
    assert (vllm.engine_metrics, vllm.engine_metrics_url) == ("vllm", None)
    assert (pool.engine_metrics, pool.engine_metrics_url) == ("auto", "/custom/metrics")  # a URL alone: auto
    assert (plain.engine_metrics, plain.engine_metrics_url) == ("off", None)
    priorities = [[getattr(r.executor, "priority", "?") for r in route.pool.replicas] for route in (vllm, pool, plain)]
    assert priorities == [[10], [-3, -3], [None]]


def test_neighbourly_reads_the_engine_and_reaches_every_replicas_window(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nname = "pool"\nurls = ["http://10.0.0.6/v1", "http://10.0.0.7/v1"]\n'
                      'neighbourly = true\n\n[[upstreams]]\nname = "plain"\nurl = "http://10.0.0.8/v1"\n')
    pool, plain = build_router(Settings(config=config), {}).routes
    assert pool.engine_metrics == "auto" and plain.engine_metrics == "off"
    assert [r.limiter.neighbourly for r in pool.pool.replicas] == [True, True]
    assert [r.limiter.neighbourly for r in plain.pool.replicas] == [False]


def test_without_max_concurrency_a_route_is_adaptive(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nurl = "http://127.0.0.1:9/v1"\n')
    [route] = build_router(Settings(config=config), {}).routes
    assert route.max_concurrency == 4096


@pytest.mark.parametrize(("tables", "message"), [
    ('[[upstreams]]\nname = "gpu-a"\nurl = "http://h/v1"\nmax_concurency = 8\n',
     "routes.toml: upstreams[0] ('gpu-a'): unknown key 'max_concurency' (did you mean 'max_concurrency'?)"),
    ('[[upstreams]]\nurl = "http://h/v1"\nweight = 2\n',
     "routes.toml: upstreams[0]: unknown key 'weight'"),
    ('[[upstreams]]\nname = "a"\nurl = "http://h/v1"\nchat_slots = 2\n',
     "routes.toml: upstreams[0] ('a'): key 'chat_slots' applies only to local routes (this one is type = \"http\")"),
    ('[[upstreams]]\nname = "l"\ntype = "local"\nurl = "http://h/v1"\n',
     "routes.toml: upstreams[0] ('l'): key 'url' applies only to http routes (this one is type = \"local\")"),
    ('[[upstreams]]\nname = "l"\ntype = "local"\napi_key = "k"\n',
     "routes.toml: upstreams[0] ('l'): key 'api_key' applies only to http routes (this one is type = \"local\")"),
    ('[[upstreams]]\nname = "a"\n',
     "routes.toml: upstreams[0] ('a'): missing key 'url' (required for an http route; or 'urls', its replicas)"),
    ('[[upstreams]]\nname = "a"\nurl = "http://h/v1"\nurls = ["http://g/v1"]\n',
     "routes.toml: upstreams[0] ('a'): give url (one server) or urls (its replicas), not both"),
    ('[[upstreams]]\nurls = []\n',
     "routes.toml: upstreams[0]: urls: must be a non-empty list of http(s) URLs (one per replica), not []"),
    ('[[upstreams]]\nurls = "http://h/v1"\n',
     "routes.toml: upstreams[0]: urls: must be a non-empty list of http(s) URLs (one per replica), not 'http://h/v1'"),
    ('[[upstreams]]\nurls = ["http://h/v1", 8000]\n',
     "routes.toml: upstreams[0]: urls[1]: must be an http(s) URL, not 8000"),
    ('[[upstreams]]\nurls = ["http://h/v1", "ftp://g/v1"]\n',
     "routes.toml: upstreams[0]: urls: urls[1]: 'ftp://g/v1' is not an http(s) URL"),
    ('[[upstreams]]\nurls = ["http://h/v1", "http://g/v1", "http://h/v1/"]\n',
     "routes.toml: upstreams[0]: urls: urls[2]: 'http://h/v1' is already urls[0]; list each replica once"),
    ('[[upstreams]]\nname = "l"\ntype = "local"\nurls = ["http://h/v1"]\n',
     "routes.toml: upstreams[0] ('l'): key 'urls' applies only to http routes (this one is type = \"local\")"),
    ('[[upstreams]]\ntype = "grpc"\n',
     "routes.toml: upstreams[0]: type: must be \"http\" or \"local\", not 'grpc'"),
    ('[[upstreams]]\nname = ""\nurl = "http://h/v1"\n',
     "routes.toml: upstreams[0]: name: must be a non-empty string, not ''"),
    ('[[upstreams]]\nname = 7\nurl = "http://h/v1"\n',
     "routes.toml: upstreams[0]: name: must be a non-empty string, not 7"),
    ('[[upstreams]]\nname = "a"\nurl = "http://h/v1"\n\n[[upstreams]]\nname = "a"\nurl = "http://g/v1"\n',
     "routes.toml: upstreams[1] ('a'): name: 'a' is already the name of upstreams[0]"),
    ('[[upstreams]]\nurl = "http://h/v1"\n\n[[upstreams]]\nname = "upstream0"\nurl = "http://g/v1"\n',
     "routes.toml: upstreams[1] ('upstream0'): name: 'upstream0' is already the name of upstreams[0]"),
    ('[[upstreams]]\nname = "l/chat"\nurl = "http://h/v1"\n\n[[upstreams]]\nname = "l"\ntype = "local"\n',
     "routes.toml: upstreams[0] ('l/chat'): name: 'l/chat' is the name of a lane of local route upstreams[1]; "
     "choose another"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmodels = []\n',
     "routes.toml: upstreams[0]: models: must be a model name or a non-empty list of model names and glob "
     "patterns, not []"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmodels = ["a", ""]\n',
     "routes.toml: upstreams[0]: models[1]: must be a non-empty string (a model name or glob pattern), not ''"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmodels = ""\n',
     "routes.toml: upstreams[0]: models[0]: must be a non-empty string (a model name or glob pattern), not ''"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmodels = 3\n',
     "routes.toml: upstreams[0]: models: must be a model name or a non-empty list of model names and glob "
     "patterns, not 3"),
    ('[[upstreams]]\nurl = "ftp://h/v1"\n', "routes.toml: upstreams[0]: url: 'ftp://h/v1' is not an http(s) URL"),
    ('[[upstreams]]\nurl = "h:8000/v1"\n', "routes.toml: upstreams[0]: url: 'h:8000/v1' is not an http(s) URL"),
    ('[[upstreams]]\nurl = "http:///v1"\n', "routes.toml: upstreams[0]: url: 'http:///v1' has no host"),
    ('[[upstreams]]\nurl = "http://h:99999/v1"\n',
     "routes.toml: upstreams[0]: url: 'http://h:99999/v1' has an invalid port"),
    ('[[upstreams]]\nurl = "http://h/v1?api-version=1"\n',
     "routes.toml: upstreams[0]: url: 'http://h/v1?api-version=1' has a query or fragment; a base URL ends in its "
     "path (e.g. /v1)"),
    ('[[upstreams]]\nurl = 8000\n', "routes.toml: upstreams[0]: url: must be an http(s) URL, not 8000"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmax_concurrency = 0\n',
     "routes.toml: upstreams[0]: max_concurrency: must be a positive integer, not 0"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmax_concurrency = "8"\n',
     "routes.toml: upstreams[0]: max_concurrency: must be a positive integer, not '8'"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmax_concurrency = true\n',
     "routes.toml: upstreams[0]: max_concurrency: must be a positive integer, not true"),
    ('[[upstreams]]\nurl = "http://h/v1"\nmax_concurrency = 8.0\n',
     "routes.toml: upstreams[0]: max_concurrency: must be a positive integer, not 8.0"),
    ('[[upstreams]]\ntype = "local"\nchat_slots = -1\n',
     "routes.toml: upstreams[0]: chat_slots: must be a positive integer, not -1"),
    ('[[upstreams]]\ntype = "local"\nembed_batch_size = false\n',
     "routes.toml: upstreams[0]: embed_batch_size: must be a positive integer, not false"),
    ('[[upstreams]]\nurl = "http://h/v1"\nendpoints = []\n',
     "routes.toml: upstreams[0]: endpoints: must be a non-empty list of batch endpoints, not []"),
    ('[[upstreams]]\nurl = "http://h/v1"\nendpoints = "/v1/videos"\n',
     "routes.toml: upstreams[0]: endpoints: must be a non-empty list of batch endpoints, not '/v1/videos'"),
    ('[[upstreams]]\nurl = "http://h/v1"\nendpoints = ["/v1/embeddings", "v1/embedding"]\n',
     "routes.toml: upstreams[0]: endpoints[1]: 'v1/embedding' is not a batch endpoint (did you mean "
     "'/v1/embeddings'?)"),
    ('[[upstreams]]\nurl = "http://h/v1"\napi_key_env = "MISSING_KEY"\n',
     "routes.toml: upstreams[0]: api_key_env: environment variable MISSING_KEY is not set: every request would go "
     "without its key"),
    ('[[upstreams]]\nurl = "http://h/v1"\napi_key_env = "EMPTY_KEY"\n',
     "routes.toml: upstreams[0]: api_key_env: environment variable EMPTY_KEY is empty: every request would go "
     "without its key"),
    ('[[upstreams]]\nurl = "http://h/v1"\napi_key = "sk-a"\napi_key_env = "GPU_B_KEY"\n',
     "routes.toml: upstreams[0]: give api_key or api_key_env, not both"),
    ('[[upstreams]]\nurl = "http://h/v1"\napi_key = ""\n',
     "routes.toml: upstreams[0]: api_key: must be a non-empty string"),
    ('[[upstreams]]\nurl = "http://h/v1"\nneighbourly = 1\n',
     "routes.toml: upstreams[0]: neighbourly: must be true or false, not 1"),
    ('[[upstreams]]\nurl = "http://h/v1"\nneighbourly = true\nengine_metrics = "off"\n',
     "routes.toml: upstreams[0]: neighbourly = true needs the engine's metrics, but engine_metrics = \"off\""),
    ('[[upstreams]]\nurl = "http://h/v1"\nbatch_priority = "10"\n',
     "routes.toml: upstreams[0]: batch_priority: must be an integer (sent as each request's \"priority\"), not '10'"),
    ('[[upstreams]]\nurl = "http://h/v1"\nbatch_priority = 1.5\n',
     "routes.toml: upstreams[0]: batch_priority: must be an integer (sent as each request's \"priority\"), not 1.5"),
    ('[[upstreams]]\nurl = "http://h/v1"\nbatch_priority = true\n',
     "routes.toml: upstreams[0]: batch_priority: must be an integer (sent as each request's \"priority\"), not true"),
    ('[[upstreams]]\nname = "l"\ntype = "local"\nbatch_priority = 10\n',
     "routes.toml: upstreams[0] ('l'): key 'batch_priority' applies only to http routes (this one is type = "
     "\"local\")"),
    ('[[upstreams]]\nurl = "http://h/v1"\nbatch_prority = 10\n',
     "routes.toml: upstreams[0]: unknown key 'batch_prority' (did you mean 'batch_priority'?)"),
    ('[[upstreams]]\nurl = "http://h/v1"\nengine_metrics = "prometheus"\n',
     "routes.toml: upstreams[0]: engine_metrics: must be \"auto\", \"vllm\", \"sglang\", \"llamacpp\" or \"off\", "
     "not 'prometheus'"),
    ('[[upstreams]]\nurl = "http://h/v1"\nengine_metrics = true\n',
     "routes.toml: upstreams[0]: engine_metrics: must be \"auto\", \"vllm\", \"sglang\", \"llamacpp\" or \"off\", "
     "not true"),
    ('[[upstreams]]\nurl = "http://h/v1"\nengine_metrics_url = "metrics"\n',
     "routes.toml: upstreams[0]: engine_metrics_url: 'metrics' is not an http(s) URL; or give a path starting with "
     "\"/\", asked of each replica's host"),
    ('[[upstreams]]\nurl = "http://h/v1"\nengine_metrics_url = "/metrics"\nengine_metrics = "off"\n',
     "routes.toml: upstreams[0]: engine_metrics_url is given but engine_metrics = \"off\"; drop one of them"),
    ('[[upstreams]]\nurls = ["http://h/v1", "http://g/v1"]\nengine_metrics_url = "http://h:9090/metrics"\n',
     "routes.toml: upstreams[0]: engine_metrics_url: with several urls give a path (e.g. \"/metrics\"): it is "
     "asked of each replica's host"),
    ("", "routes.toml: upstreams: expected one or more [[upstreams]] tables"),
    ("upstreams = []\n", "routes.toml: upstreams: expected one or more [[upstreams]] tables"),
    ('[upstreams]\nurl = "http://h/v1"\n',
     "routes.toml: upstreams: expected one or more [[upstreams]] tables (write [[upstreams]], an array of "
     "tables, not [upstreams])"),
])
def test_each_problem_names_file_route_key_and_reason(tables: str, message: str) -> None:
    assert problem(tables) == message


def test_unknown_top_level_keys_are_refused() -> None:
    assert problem('upstream = "http://h/v1"\n\n[[upstreams]]\nurl = "http://h/v1"\n') == (
        "routes.toml: unknown key 'upstream' (did you mean 'upstreams'?)")
    assert problem('log_level = "debug"\n\n[[upstreams]]\nurl = "http://h/v1"\n') == (
        "routes.toml: unknown key 'log_level' (the file holds [[upstreams]] tables)")


def test_every_problem_is_listed_in_one_message() -> None:
    message = problem("""
[[upstreams]]
name = "gpu-a"
url = "http://10.0.0.1:8000/v1"
max_concurency = 8

[[upstreams]]
name = "gpu-b"
url = "ftp://10.0.0.2/v1"
max_concurrency = 0
""")
    assert message == "\n".join([
        "routes.toml: 3 problems:",
        "  upstreams[0] ('gpu-a'): unknown key 'max_concurency' (did you mean 'max_concurrency'?)",
        "  upstreams[1] ('gpu-b'): max_concurrency: must be a positive integer, not 0",
        "  upstreams[1] ('gpu-b'): url: 'ftp://10.0.0.2/v1' is not an http(s) URL",
    ])


def test_secrets_are_never_repeated() -> None:
    for tables in ('[[upstreams]]\nurl = "http://h/v1"\napi_key_env = "sk-live-s3cret"\n',
                   '[[upstreams]]\nurl = "http://user:sk-live-s3cret@h/v1"\n',
                   '[[upstreams]]\nurl = "http://h/v1"\napi_key = ["sk-live-s3cret"]\n'):
        message = problem(tables)
        assert "s3cret" not in message
        assert message.startswith("routes.toml: upstreams[0]: "), message


def test_a_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    bad = tmp_path / "routes.toml"
    bad.write_text('[[upstreams]]\nurl = "http://h/v1\n')
    with pytest.raises(ConfigError, match=rf"^{bad}: not valid TOML: .*line 2"):
        read_routing_file(bad, ENV)
    with pytest.raises(ConfigError, match=rf"^cannot read routing file {tmp_path / 'gone.toml'}: "):
        read_routing_file(tmp_path / "gone.toml", ENV)


def test_a_bad_upstream_url_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--upstream: 'localhost:8000/v1' is not an http\(s\) URL$"):
        build_router(Settings(upstream="localhost:8000/v1"))


def test_the_local_engine_is_a_route_per_lane_with_its_window(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nname = "l"\ntype = "local"\nchat_slots = 40\nembed_batch_size = 8\n\n'
                      '[[upstreams]]\nname = "small"\ntype = "local"\nchat_slots = 40\nmax_concurrency = 8\n')
    routes = build_router(Settings(config=config), {}).routes
    assert [(r.name, r.max_concurrency) for r in routes] == [
        ("l/chat", 42), ("l/embeddings", 16), ("l/builtin", 64),  # chat slots + 2; two embedding batches
        ("small/chat", 8), ("small/embeddings", 8), ("small/builtin", 8),  # max_concurrency narrows, never widens
    ]
    default = build_router(Settings(), {})
    assert [(r.name, r.max_concurrency) for r in default.routes] == [
        ("local/chat", 6), ("local/embeddings", 64), ("local/builtin", 64)]  # 4 slots + 2, two batches of 32
    # fixed windows: the whole window from the start, and a timeout does not shrink it below the slots
    chat = default.routes[0].pool.replicas[0].limiter
    assert chat.capacity == 6
    chat.on_start()
    chat.on_timeout(1.0, 30.0)
    chat.on_abandoned()
    assert chat.capacity == 6


@pytest.mark.parametrize(("model", "lane"), [
    ("SmolLM2-135M-Instruct", "chat"), ("smollm2-135m-INSTRUCT", "chat"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "chat"),
    ("all-MiniLM-L6-v2", "embeddings"), ("sentence-transformers/all-MiniLM-L6-v2", "embeddings"),
    ("echo", "builtin"), ("hash", "builtin"), ("gpt-4o", "builtin"),
])
def test_each_model_goes_to_its_lane_in_any_spelling(model: str, lane: str) -> None:
    router = build_router(Settings(), {})
    route = router.resolve(model)
    assert route is not None and route.name == f"local/{lane}"


def test_a_local_route_keeps_its_patterns_and_endpoints_in_every_lane(tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text('[[upstreams]]\nname = "l"\ntype = "local"\nmodels = ["SmolLM2-*", "echo"]\n'
                      'endpoints = ["/v1/chat/completions"]\n\n[[upstreams]]\nname = "rest"\nurl = "http://h/v1"\n')
    router = build_router(Settings(config=config), {})
    assert [r.name for r in router.routes] == ["l/chat", "l/embeddings", "l/builtin", "rest"]
    assert router.resolve("SmolLM2-135M-Instruct") is router.routes[0]
    assert router.resolve("echo") is router.routes[2]
    assert router.resolve("all-MiniLM-L6-v2") is router.routes[3]  # not in the local route's models
    assert router.resolve("smollm2-135m-instruct") is router.routes[3]  # the patterns are exact, as before
    assert router.check_endpoint("SmolLM2-135M-Instruct", "/v1/completions") == (
        "Model 'SmolLM2-135M-Instruct' (local engine) does not serve /v1/completions; it serves /v1/chat/completions.")
    assert router.check_endpoint("echo", "/v1/chat/completions") is None
    assert len(router.executors()) == 2  # the engine once: started and closed once


def test_the_start_line_shows_the_local_engine_once_with_its_lanes() -> None:
    line = summary(Settings(), build_router(Settings(), {}), serving=False)
    assert " · models * -> local engine (local/chat 6, local/embeddings 64, local/builtin 64 in flight)" in line
