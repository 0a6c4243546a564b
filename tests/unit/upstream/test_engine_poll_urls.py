"""Where a replica's engine signals are asked for: `/metrics` and `/slots` beside its `/v1`, or the route's
`engine_metrics_url` (a path on each replica's own host, or one absolute URL), and whether the key may go there."""

from __future__ import annotations

import pytest

from batchgate.upstream.engine_poll import engine_urls, same_origin


@pytest.mark.parametrize(("base", "override", "metrics", "slots"), [
    ("http://10.0.0.5:8000/v1", None, "http://10.0.0.5:8000/metrics", "http://10.0.0.5:8000/slots"),
    ("https://gpu.internal/v1/", None, "https://gpu.internal/metrics", "https://gpu.internal/slots"),
    ("http://h:8080/openai/v1", None, "http://h:8080/openai/metrics", "http://h:8080/openai/slots"),
    ("http://h:8080", None, "http://h:8080/metrics", "http://h:8080/slots"),
    ("http://h:8000/v1", "/engine/metrics", "http://h:8000/engine/metrics", "http://h:8000/slots"),
    ("http://h:8000/v1", "http://exporter:9400/metrics", "http://exporter:9400/metrics", "http://h:8000/slots"),
])
def test_metrics_and_slots_urls(base: str, override: str | None, metrics: str, slots: str) -> None:
    assert engine_urls(base, override) == (metrics, slots)


def test_the_key_goes_only_to_the_same_scheme_host_and_port() -> None:
    assert same_origin("http://h:8000/metrics", "http://h:8000/v1")
    assert not same_origin("http://h:9400/metrics", "http://h:8000/v1")
    assert not same_origin("http://exporter:8000/metrics", "http://h:8000/v1")
    assert not same_origin("https://h:8000/metrics", "http://h:8000/v1")
