"""What an inference engine says about its own load: requests running, requests waiting, its slots, its KV-cache use.

Pure: text in, an `EngineLoad` out, or None when the text says nothing this module can read (it never raises).
`engine_poll.py` fetches the text. The names were checked against each engine's own code:

- **vLLM** (V1 engine, `vllm/v1/metrics/loggers.py`, 0.10 and later): gauges `vllm:num_requests_running`,
  `vllm:num_requests_waiting` and `vllm:kv_cache_usage_perc` (0 to 1), one series per engine core (labels
  `model_name` and `engine`, the data-parallel rank), summed. `vllm:gpu_cache_usage_perc` is the older name of
  the last one (deprecated by vllm-project/vllm#18354, removed by #29330 in late 2025): read when the new is absent.
- **SGLang** (`python/sglang/srt/metrics/collector.py`): `sglang:num_running_reqs`, `sglang:num_queue_reqs` and
  `sglang:token_usage` (0 to 1), labelled `model_name`, `engine_type`, `tp_rank`, `pp_rank` and, with data
  parallelism, `dp_rank`. Only attention-TP rank 0 reports unless `--enable-metrics-for-all-schedulers`, when the
  ranks of one scheduler all report the same queue: series that differ only in a `*_rank` label other than
  `dp_rank` are one scheduler (their largest value counts once); schedulers are summed. With priority
  scheduling, recent versions add per-priority breakdowns (`priority="10"`) beside the total (`priority=""`):
  the breakdowns are skipped.
- **llama.cpp's server** with `--metrics` (`tools/server`): `llamacpp:requests_processing` and
  `llamacpp:requests_deferred`, no labels, no KV-cache gauge. Its `GET /slots` is a JSON list with one object per
  slot, `is_processing` true while it decodes: the slot count, and the busy ones when `/metrics` is off. Checked
  against the server of xllamacpp 2026.10.11549 (the samples in tests/unit/upstream/test_engine_load.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import orjson

EngineKind = Literal["vllm", "sglang", "llamacpp"]
KINDS: tuple[EngineKind, ...] = ("vllm", "sglang", "llamacpp")  # the order `auto` tries them in


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """One reading of an engine's own gauges."""

    running: float  # requests it is decoding (or prefilling) now
    waiting: float  # requests queued inside it for a slot or for KV cache (0 when only /slots was read)
    slots: int | None  # sequences it can run at once, where it says (llama.cpp's /slots); None: unknown
    kv_usage: float | None  # fraction of its KV cache in use, 0 to 1 (vLLM, SGLang); None: not reported


@dataclass(frozen=True, slots=True)
class _Names:
    running: str
    waiting: str
    kv: tuple[str, ...]  # first present wins


NAMES: dict[EngineKind, _Names] = {
    "vllm": _Names("vllm:num_requests_running", "vllm:num_requests_waiting",
                   ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
    "sglang": _Names("sglang:num_running_reqs", "sglang:num_queue_reqs", ("sglang:token_usage",)),
    "llamacpp": _Names("llamacpp:requests_processing", "llamacpp:requests_deferred", ()),
}
_WANTED = frozenset(n for names in NAMES.values() for n in (names.running, names.waiting, *names.kv))

Labels = tuple[tuple[str, str], ...]


def detect(text: str) -> EngineKind | None:
    """Which engine wrote this exposition text, from the gauges it has (None: none this module reads)."""
    samples = _samples(text)
    return next((k for k in KINDS if NAMES[k].running in samples and NAMES[k].waiting in samples), None)


def parse_metrics(text: str, kind: EngineKind | Literal["auto"] = "auto") -> EngineLoad | None:
    """The load in Prometheus text exposition `text` written by `kind` (`auto`: whichever `detect` finds); None
    when the text lacks that engine's running or waiting gauge."""
    samples = _samples(text)
    if kind == "auto":
        found = next((k for k in KINDS if NAMES[k].running in samples and NAMES[k].waiting in samples), None)
        if found is None:
            return None
        kind = found
    names = NAMES[kind]
    if names.running not in samples or names.waiting not in samples:
        return None
    kv = next((_combine(samples[n], add=False) for n in names.kv if n in samples), None)
    return EngineLoad(_combine(samples[names.running], add=True), _combine(samples[names.waiting], add=True), None,
                      None if kv is None else min(1.0, kv))


def parse_slots(body: bytes | str) -> EngineLoad | None:
    """The load in llama.cpp's `GET /slots` answer: slots = its length, running = the slots processing. None for
    anything else (its error object when started with `--no-slots`, an HTML page, a list of something else)."""
    try:
        slots = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(slots, list) or not slots:
        return None
    busy = 0
    for slot in slots:
        if not isinstance(slot, dict) or not isinstance(slot.get("is_processing"), bool):
            return None
        busy += slot["is_processing"]
    return EngineLoad(float(busy), 0.0, len(slots), None)


def _samples(text: str) -> dict[str, list[tuple[Labels, float]]]:
    """The samples of the gauges this module reads, by name; lines it cannot read are skipped. Each name is
    searched for with `str.find` (a C scan) rather than by splitting a vLLM scrape of thousands of lines."""
    out: dict[str, list[tuple[Labels, float]]] = {}
    if not isinstance(text, str):
        return out
    text = "\n" + text
    for name in _WANTED:
        needle = "\n" + name
        i = text.find(needle)
        while i != -1:
            end = text.find("\n", i + 1)
            line = text[i + 1:end if end != -1 else len(text)].rstrip("\r")
            sample = _sample(line)
            if sample is not None and sample[0] == name:
                out.setdefault(name, []).append((sample[1], sample[2]))
            i = text.find(needle, i + 1)
    return out


def _sample(line: str) -> tuple[str, Labels, float] | None:
    """`name{a="x",b="y"} value [timestamp]` read strictly enough: None for anything malformed, and for values
    that are not finite and not negative (a gauge of requests or a usage ratio is neither)."""
    brace = line.find("{")
    space = line.find(" ")
    labels: Labels = ()
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        parsed = _labels(line, brace + 1)
        if parsed is None:
            return None
        labels, end = parsed
        rest = line[end:]
    else:
        if space == -1:
            return None
        name, rest = line[:space], line[space:]
    fields = rest.split()
    if not 1 <= len(fields) <= 2 or not rest[:1].isspace():
        return None
    try:
        value = float(fields[0])
        if len(fields) == 2:
            int(fields[1])  # a timestamp in milliseconds
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return name, labels, value


def _labels(line: str, i: int) -> tuple[Labels, int] | None:
    """The label pairs from `line[i:]` up to its closing brace, and the index after it; None when malformed."""
    pairs: list[tuple[str, str]] = []
    n = len(line)
    while True:
        while i < n and line[i] in " ,":
            i += 1
        if i < n and line[i] == "}":
            return tuple(pairs), i + 1
        eq = line.find("=", i)
        if eq == -1 or eq + 1 >= n or line[eq + 1] != '"':
            return None
        key = line[i:eq].strip()
        if not key:
            return None
        value: list[str] = []
        j = eq + 2
        while j < n and line[j] != '"':
            if line[j] == "\\" and j + 1 < n:
                nxt = line[j + 1]
                value.append("\n" if nxt == "n" else nxt)
                j += 2
            else:
                value.append(line[j])
                j += 1
        if j >= n:
            return None
        pairs.append((key, "".join(value)))
        i = j + 1


def _combine(series: Iterable[tuple[Labels, float]], add: bool) -> float:
    """One value from the series of one gauge: per-priority breakdowns skipped, the shards of one scheduler
    (series that differ only in a `*_rank` label other than `dp_rank`) counted once by their largest value, and
    the schedulers added (`add`: requests) or the largest taken (a usage ratio: the fullest engine is the limit)."""
    per_scheduler: dict[Labels, float] = {}
    for labels, value in series:
        if any(k == "priority" and v for k, v in labels):
            continue
        key = tuple((k, v) for k, v in labels if not (k.endswith("_rank") and k != "dp_rank"))
        per_scheduler[key] = max(value, per_scheduler.get(key, 0.0))
    values = list(per_scheduler.values())
    if not values:
        return 0.0
    return float(sum(values)) if add else max(values)
