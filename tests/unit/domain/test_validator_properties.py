"""Property-based tests of the input-line validator: whatever bytes arrive, it never raises, every error is
well-formed, the list is capped with a summary, and a line it accepts is one the executor can parse."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchgate.domain.batch import ENDPOINTS
from batchgate.domain.validation import LineValidator

SETTINGS = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MODELS = ("m", "other")

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, json_values)


messages = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]),
                                           "content": st.text(max_size=30)}), max_size=3)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": maybe(st.sampled_from(["m", "other", "unknown", ""])),
        "messages": maybe(messages),
        "input": maybe(st.text(max_size=20) | st.lists(st.text(max_size=5), max_size=3)),
        "prompt": maybe(st.text(max_size=20)),
        "stream": maybe(st.booleans()),
        "temperature": json_values,
    },
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "custom_id": maybe(st.sampled_from(["a", "b", "c", "", "x" * 600])),
        "method": maybe(st.sampled_from(["POST", "post", "GET"])),
        "url": maybe(st.sampled_from([*ENDPOINTS, "/v1/other", "http://evil/v1/chat/completions"])),
        "body": maybe(bodies),
        "extra": json_values,
    },
)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """A line as bytes: structured (right and wrong types), then sometimes mangled; or raw bytes."""
    kind = draw(st.sampled_from(["structured", "structured", "structured", "mangled", "bytes", "json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    raw = json.dumps(draw(requests), ensure_ascii=draw(st.booleans())).encode()
    if kind == "mangled" and raw:
        at = draw(st.integers(0, len(raw)))
        how = draw(st.sampled_from(["cut", "insert", "replace"]))
        junk = draw(st.binary(min_size=1, max_size=4))
        if how == "cut":
            raw = raw[:at]
        elif how == "insert":
            raw = raw[:at] + junk + raw[at:]
        else:
            raw = raw[:at] + junk + raw[at + len(junk):]
    return raw.replace(b"\n", b" ")


def feed_all(endpoint: str, raws: list[bytes], max_errors: int) -> tuple[LineValidator, list[bool]]:
    v = LineValidator(endpoint, lambda m: None if m in MODELS else f"unknown model {m}", max_errors)
    verdicts = [v.feed(i, raw) for i, raw in enumerate(raws, 1)]
    confirm_all(v, raws)
    return v, verdicts


def confirm_all(v: LineValidator, raws: list[bytes]) -> None:
    """What the worker does after the last line when two custom_ids share a hash: read the lines again."""
    if v.repeats_possible():
        v.recheck([(n, 0, 0, raw) for n, raw in enumerate(raws, 1)])


def repeats(raws: list[bytes], verdicts: list[bool]) -> list[int]:
    """Lines, valid on their own, whose custom_id an earlier such line has."""
    seen: set[str] = set()
    out = []
    for i, (raw, ok) in enumerate(zip(raws, verdicts, strict=True), 1):
        if ok:
            cid = orjson.loads(raw)["custom_id"]
            if cid in seen:
                out.append(i)
            seen.add(cid)
    return out


@SETTINGS
@given(st.lists(lines(), min_size=1, max_size=12), st.sampled_from(ENDPOINTS), st.integers(1, 5))
def test_validator_never_raises_and_errors_are_consistent(raws: list[bytes], endpoint: str, cap: int) -> None:
    v, verdicts = feed_all(endpoint, raws, cap)
    requests_ = sum(1 for raw in raws if raw.strip())
    assert v.requests == requests_
    rejected = [i for i, (raw, ok) in enumerate(zip(raws, verdicts, strict=True), 1) if raw.strip() and not ok]
    assert v.bad_lines == len(rejected)
    bad = sorted(rejected + repeats(raws, verdicts))
    errors = v.finish(sum(map(len, raws)))
    per_line = [e for e in errors if e.line is not None]
    # One error per bad line, 1-based, in file order, capped.
    assert [e.line for e in per_line] == bad[:cap]
    assert all(isinstance(e.code, str) and e.code and isinstance(e.message, str) and e.message for e in errors)
    if len(bad) > cap:
        assert errors[-1].code == "too_many_errors" and str(len(bad) - cap) in errors[-1].message
    else:
        assert all(e.code != "too_many_errors" for e in errors)
    if not errors:
        assert all(verdicts[i] for i, raw in enumerate(raws) if raw.strip())
        assert v.model in MODELS


@SETTINGS
@given(lines(), st.sampled_from(ENDPOINTS))
def test_an_accepted_line_is_one_the_executor_can_parse(raw: bytes, endpoint: str) -> None:
    _, [ok] = feed_all(endpoint, [raw], 100)
    if not ok:
        return
    obj = orjson.loads(raw)  # what the chunk runner and the finalizer do with a validated line
    assert isinstance(obj, dict)
    assert isinstance(obj["custom_id"], str) and obj["custom_id"]
    assert obj["method"].upper() == "POST"
    assert obj["url"] == endpoint
    assert isinstance(obj["body"], dict) and obj["body"].get("model") in MODELS
    assert obj["body"].get("stream") is not True


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=10))
def test_duplicate_custom_ids_flag_every_repeat(ids: list[str]) -> None:
    raws = [orjson.dumps({"custom_id": c, "method": "POST", "url": ENDPOINTS[0],
                          "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}) for c in ids]
    v, verdicts = feed_all(ENDPOINTS[0], raws, 100)
    assert all(verdicts)  # each line is valid on its own: repeats are found once every line is in
    errors = v.finish(1)
    assert all(e.code == "duplicate_custom_id" for e in errors)
    assert [e.line for e in errors] == [i for i, c in enumerate(ids, 1) if c in ids[:i - 1]]


class OneCheckAtATime(LineValidator):
    """The validator without its one-pass shortcut for valid lines (`_passes`)."""

    def _passes(self, obj: Any) -> bool:
        return False


INPUT_FIELD = {"/v1/chat/completions": "messages", "/v1/completions": "prompt", "/v1/images/generations": "prompt",
               "/v1/images/edits": "prompt", "/v1/videos": "prompt"}  # the others take `input`
EDGES: dict[str, list[Any]] = {  # values that break (or only just keep) one rule each
    "custom_id": ["", "x" * 512, "x" * 513, 5],
    "method": ["post", "GET", 1],
    "url": [*ENDPOINTS, "/v1/other"],
    "body": [[], "body"],
    "model": ["", "other", "unknown", 3],
    "input": [[], "", ["a", "b"], [1, 2], {"a": 1}],
    "stream": [True, False, "true"],
}


@st.composite
def near_valid(draw: st.DrawFn, endpoint: str) -> bytes:
    """A valid request for `endpoint`, often with one field removed or set to an edge value."""
    field = INPUT_FIELD.get(endpoint, "input")
    value = draw(messages.filter(bool)) if field == "messages" else draw(st.text(min_size=1, max_size=8))
    body: dict[str, Any] = {"model": draw(st.sampled_from(MODELS)), field: value}
    if endpoint == "/v1/images/edits":
        body["images"] = draw(st.sampled_from([[{"image_url": "https://x/y.png"}], [], "y.png", None]))
    req: dict[str, Any] = {"custom_id": draw(st.sampled_from(["a", "b", "c"])), "method": "POST", "url": endpoint,
                           "body": body}
    key = draw(st.sampled_from([None, None, *EDGES]))
    if key is not None:
        target = body if key in ("model", "input", "stream") else req
        name = field if key == "input" else key
        if draw(st.booleans()) and name in target:
            del target[name]
        else:
            target[name] = draw(st.sampled_from(EDGES[key]))
    return orjson.dumps(req)


@SETTINGS
@given(st.sampled_from(ENDPOINTS).flatmap(lambda e: st.tuples(st.just(e), st.lists(near_valid(e), max_size=12))),
       st.lists(lines(), max_size=3))
def test_the_one_pass_check_agrees_with_the_checks_one_by_one(
    case: tuple[str, list[bytes]], noise: list[bytes]
) -> None:
    # `_passes` repeats every check in one go for speed: if a check is added or changed in one place and not
    # the other, this fails.
    endpoint, raws = case
    raws = raws + noise

    def model_check(m: str) -> str | None:
        return None if m in MODELS else f"unknown model {m}"

    def serves(m: str) -> str | None:  # the route of "other" does not serve the endpoint
        return None if m == "m" else f"{m} does not serve {endpoint}"

    fast = LineValidator(endpoint, model_check, 100, check_endpoint=serves)
    slow = OneCheckAtATime(endpoint, model_check, 100, check_endpoint=serves)
    assert [fast.feed(i, raw) for i, raw in enumerate(raws, 1)] == [slow.feed(i, raw) for i, raw in enumerate(raws, 1)]
    confirm_all(fast, raws)
    confirm_all(slow, raws)
    assert fast.finish(1) == slow.finish(1)
    assert (fast.requests, fast.embedding_inputs, fast.model) == (slow.requests, slow.embedding_inputs, slow.model)


@SETTINGS
@given(st.sampled_from(ENDPOINTS).flatmap(lambda e: st.tuples(st.just(e), st.lists(near_valid(e), max_size=12))),
       st.lists(lines(), max_size=3), st.randoms(use_true_random=False), st.integers(1, 5))
def test_a_block_at_a_time_is_the_same_as_a_line_at_a_time(
    case: tuple[str, list[bytes]], noise: list[bytes], rnd: Any, cap: int
) -> None:
    # `feed_lines` runs the common case inline and hands every other line to `feed`: same verdicts, same state.
    endpoint, raws = case
    raws = raws + noise + [b"", b"  "]
    rnd.shuffle(raws)

    def model_check(m: str) -> str | None:
        return None if m in MODELS else f"unknown model {m}"

    one, block = LineValidator(endpoint, model_check, cap), LineValidator(endpoint, model_check, cap)
    numbered = [(n, 0, 0, raw) for n, raw in enumerate(raws, 1)]
    accepted_one = [line for line in numbered if one.feed(line[0], line[3])]
    cut = rnd.randint(0, len(numbered))
    accepted_block = block.feed_lines(numbered[:cut]) + block.feed_lines(numbered[cut:])
    assert accepted_block == accepted_one
    confirm_all(one, raws)
    confirm_all(block, raws)
    assert block.finish(1) == one.finish(1)
    assert (block.requests, block.bad_lines, block.embedding_inputs, block.model) == (
        one.requests, one.bad_lines, one.embedding_inputs, one.model)
