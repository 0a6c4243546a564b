"""The line validator, on its own (pure function of bytes)."""

import orjson
import pytest

from batchgate.domain.limits import BatchLimits
from batchgate.domain.validation import LineValidator, peek_is_jsonl
from batchgate.settings import Settings

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
    if v.repeats_possible():
        v.recheck([(n, 0, 0, raw) for n, raw in enumerate(lines, 1)])
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


def request(cid: str, url: str, body: dict[str, object]) -> bytes:
    return orjson.dumps({"custom_id": cid, "method": "POST", "url": url, "body": body})


@pytest.mark.parametrize(("url", "body", "expected"), [
    ("/v1/images/generations", {"model": "m", "prompt": "a cat"}, []),
    ("/v1/images/generations", {"model": "m", "n": 2}, [("invalid_request", "body.prompt", 1)]),
    ("/v1/images/edits", {"model": "m", "prompt": "a hat", "images": [{"image_url": "https://x/y.png"}]}, []),
    ("/v1/images/edits", {"model": "m", "images": [{"file_id": "file-1"}]}, [("invalid_request", "body.prompt", 1)]),
    ("/v1/images/edits", {"model": "m", "prompt": "a hat"}, [("invalid_request", "body.images", 1)]),
    ("/v1/images/edits", {"model": "m", "prompt": "a hat", "images": []}, [("invalid_request", "body.images", 1)]),
    ("/v1/images/edits", {"model": "m", "prompt": "a hat", "images": "x.png"}, [("invalid_request", "body.images", 1)]),
    ("/v1/videos", {"model": "m", "prompt": "waves", "seconds": "4"}, []),
    ("/v1/videos", {"model": "m", "seconds": "4"}, [("invalid_request", "body.prompt", 1)]),
    ("/v1/videos", {"model": "m", "prompt": "waves", "stream": True}, [("streaming_unsupported", "body.stream", 1)]),
])
def test_image_and_video_lines_need_their_fields(
    url: str, body: dict[str, object], expected: list[tuple[str, object, object]]
) -> None:
    assert check(request("a", url, body), endpoint=url) == expected


def test_a_route_that_does_not_serve_the_endpoint_fails_every_line_asking_once() -> None:
    asked: list[str] = []

    def serves(model: str) -> str | None:
        asked.append(model)
        return f"Model '{model}' does not serve /v1/moderations."

    v = LineValidator("/v1/moderations", lambda m: None, check_endpoint=serves)
    for i in (1, 2, 3):
        assert not v.feed(i, request(f"c{i}", "/v1/moderations", {"model": "echo", "input": "x"}))
    errs = v.finish(10)
    assert [(e.code, e.param, e.line) for e in errs] == [("unsupported_endpoint", "url", n) for n in (1, 2, 3)]
    assert errs[0].message == "Model 'echo' does not serve /v1/moderations."
    assert asked == ["echo"]
    unknown = LineValidator("/v1/moderations", lambda m: "no such model", check_endpoint=serves)
    unknown.feed(1, request("c", "/v1/moderations", {"model": "gpt", "input": "x"}))
    assert [e.code for e in unknown.finish(10)] == ["model_not_found"]  # the model first: nothing serves it


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


def test_configured_limits_and_zero_for_none() -> None:
    v = LineValidator(CHAT, lambda m: None, limits=BatchLimits(2, 10, 1))
    v.requests = 3
    assert [(e.code, e.message) for e in v.finish(11)] == [
        ("too_many_tasks", "The batch input file contains 3 requests; the limit is 2 requests per batch."),
        ("file_too_large", "The batch input file is larger than the 10 maximum for the requested model. "
                           "Please try again with a smaller batch."),
    ]
    v = LineValidator(CHAT, lambda m: None, limits=BatchLimits(0, 0, 0))
    v.feed(1, line())
    v.requests, v.embedding_inputs = 10**9, 10**9
    assert v.finish(10**12) == []


def test_run_lifts_the_limits_unless_they_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().batch_limits == BatchLimits(50_000, 209_715_200, 50_000)
    assert Settings().max_upload_bytes == 512 * 1024 * 1024
    assert Settings.one_shot().batch_limits == BatchLimits(0, 0, 0)
    assert Settings.one_shot().max_upload_bytes == 0  # run reads a local file: a 1 GB one is no upload
    assert Settings.one_shot(max_batch_requests=7).batch_limits == BatchLimits(7, 0, 0)
    monkeypatch.setenv("BATCHGATE_MAX_BATCH_FILE_BYTES", "99")
    assert Settings.one_shot().batch_limits == BatchLimits(0, 99, 0)


def test_peek_is_jsonl() -> None:
    assert peek_is_jsonl(b'\n{"a": 1}\nbroken')
    assert peek_is_jsonl(b'\xef\xbb\xbf{"a": 1}\n')
    assert not peek_is_jsonl(b"")
    assert not peek_is_jsonl(b"hello world\n")
    assert not peek_is_jsonl(b"[1]\n")
