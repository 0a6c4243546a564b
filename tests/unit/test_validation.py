"""The line validator, on its own (pure function of bytes)."""

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchgate.domain.validation import LineValidator, peek_is_jsonl

CHAT = "/v1/chat/completions"


def line(**over: object) -> bytes:
    obj = {"custom_id": "a", "method": "POST", "url": CHAT,
           "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}
    obj.update(over)
    return orjson.dumps(obj)


Verdict = list[tuple[str, object, object]]


def check(*lines: bytes, endpoint: str = CHAT, known: tuple[str, ...] = ("m", "other")) -> Verdict:
    v = LineValidator(endpoint, lambda m: None if m in known else f"unknown {m}")
    for i, raw in enumerate(lines, 1):
        v.feed(i, raw)
    return [(e.code, e.param, e.line) for e in v.finish(sum(map(len, lines)))]


def test_valid_file_has_no_errors() -> None:
    assert check(line(), line(custom_id="b")) == []


@pytest.mark.parametrize(("raw", "expected"), [
    (b"{not json", ("invalid_json_line", None, 1)),
    (b"[1, 2]", ("invalid_json_line", None, 1)),
    (orjson.dumps({"method": "POST", "url": CHAT, "body": {}}), ("missing_required_parameter", "custom_id", 1)),
    (line(method=None), ("missing_required_parameter", "method", 1)),
    (line(url="/v1/embeddings"), ("invalid_url", "url", 1)),
    (line(method="GET"), ("invalid_value", "method", 1)),
    (line(custom_id=5), ("invalid_type", "custom_id", 1)),
    (line(body=[1]), ("invalid_type", "body", 1)),
    (line(body={"model": "m", "messages": [], "stream": True}), ("streaming_unsupported", "body.stream", 1)),
    (line(body={"messages": [{"role": "user", "content": "x"}]}), ("invalid_request", "body.model", 1)),
    (line(body={"model": "m"}), ("invalid_request", "body.messages", 1)),
    (line(body={"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
     ("model_not_found", "body.model", 1)),
])
def test_each_bad_line_gets_its_code(raw: bytes, expected: tuple[str, object, object]) -> None:
    assert check(raw) == [expected]


def test_duplicates_and_mixed_models_point_at_the_offending_line() -> None:
    other = {"model": "other", "messages": [{"role": "user", "content": "x"}]}
    assert check(line(), line(), line(custom_id="c", body=other)) == [
        ("duplicate_custom_id", "custom_id", 2),
        ("model_mismatch", "body.model", 3),
    ]


def test_blank_lines_are_skipped_and_empty_file_fails() -> None:
    assert check(line(), b"", b"  ") == []
    assert check(b"", b"\r") == [("empty_file", None, None)]


def test_errors_are_capped_with_a_summary_entry() -> None:
    v = LineValidator(CHAT, lambda m: None, max_errors=3)
    for i in range(1, 11):
        v.feed(i, b"garbage")
    errs = v.finish(100)
    assert [e.line for e in errs[:3]] == [1, 2, 3]
    assert errs[3].code == "too_many_errors" and "7 more" in errs[3].message


def test_limits_on_requests_size_and_embedding_inputs() -> None:
    v = LineValidator(CHAT, lambda m: None)
    v.requests = 50_001
    assert v.finish(10)[0].code == "too_many_tasks"
    v = LineValidator(CHAT, lambda m: None)
    v.feed(1, line())
    assert v.finish(209_715_201)[0].code == "file_too_large"
    emb = LineValidator("/v1/embeddings", lambda m: None)
    body = {"model": "e", "input": ["x"] * 25_001}
    emb.feed(1, orjson.dumps({"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": body}))
    emb.feed(2, orjson.dumps({"custom_id": "b", "method": "POST", "url": "/v1/embeddings", "body": body}))
    assert [e.code for e in emb.finish(10)] == ["too_many_tasks"]


def test_peek_is_jsonl() -> None:
    assert peek_is_jsonl(b'\n{"a": 1}\nbroken')
    assert peek_is_jsonl(b'\xef\xbb\xbf{"a": 1}\n')
    assert not peek_is_jsonl(b"")
    assert not peek_is_jsonl(b"hello world\n")
    assert not peek_is_jsonl(b"[1]\n")


# The fast path (msgspec skim) and the full path (orjson) must reach the same verdict on every line.
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=8,
)
_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["m", "other", "", 5, None]),
        "stream": st.sampled_from([True, False, None, "yes"]),
        "messages": st.sampled_from([[], [{"role": "user", "content": "x"}], "hi", None, [1]]),
        "input": st.sampled_from(["x", ["a", "b"], [1, 2], None, []]),
        "prompt": st.sampled_from(["p", None, ["a"]]),
        "extra": _json_values,
    },
)
_lines = st.fixed_dictionaries(
    {},
    optional={
        "custom_id": st.sampled_from(["a", "b", "", 7, None, "x" * 600]),
        "method": st.sampled_from(["POST", "post", "GET", None, 1]),
        "url": st.sampled_from([CHAT, "/v1/embeddings", "/v1/completions", None, 3]),
        "body": _bodies | _json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_lines, min_size=1, max_size=4), st.sampled_from(
    ["/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"]))
def test_fast_and_full_paths_agree(lines: list[dict[str, object]], endpoint: str) -> None:
    fast = LineValidator(endpoint, lambda m: None if m == "m" else "unknown")
    full = LineValidator(endpoint, lambda m: None if m == "m" else "unknown")
    full._check = full._check_full  # type: ignore[method-assign]
    for i, obj in enumerate(lines, 1):
        raw = orjson.dumps(obj)
        assert fast.feed(i, raw) == full.feed(i, raw)
    assert fast.errors == full.errors
    assert fast.embedding_inputs == full.embedding_inputs
