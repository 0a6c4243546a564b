"""The engines' own gauges read from exposition text shaped as each engine writes it (names, labels, HELP/TYPE lines
and the metrics around them as in their source; llama.cpp's captured from its server), and garbage read as None,
never an exception."""

from __future__ import annotations

import pytest

from batchgate.upstream.engine_load import EngineLoad, detect, parse_metrics, parse_slots

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
Q = "qwen3"  # SGLang's model_name, short for the lines below

# vLLM V1 with two data-parallel engine cores (label `engine`), as prometheus_client writes it.
VLLM = f"""# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12345.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="{MODEL}"}} 12.0
vllm:num_requests_running{{engine="1",model_name="{MODEL}"}} 9.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="{MODEL}"}} 3.0
vllm:num_requests_waiting{{engine="1",model_name="{MODEL}"}} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{engine="0",model_name="{MODEL}"}} 0.41
vllm:kv_cache_usage_perc{{engine="1",model_name="{MODEL}"}} 0.57
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{engine="0",model_name="{MODEL}"}} 1.234567e+06
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",model_name="{MODEL}"}} 0.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="{MODEL}"}} 4711.0
vllm:time_to_first_token_seconds_sum{{engine="0",model_name="{MODEL}"}} 188.25
"""

# vLLM before vllm:kv_cache_usage_perc (and one engine core).
VLLM_OLD = f"""# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="{MODEL}"}} 4.0
# TYPE vllm:num_requests_swapped gauge
vllm:num_requests_swapped{{engine="0",model_name="{MODEL}"}} 0.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="{MODEL}"}} 1.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{engine="0",model_name="{MODEL}"}} 0.25
"""

# SGLang with tensor parallelism 2 and --enable-metrics-for-all-schedulers (both TP ranks report the one scheduler),
# priority scheduling on (per-priority breakdowns beside the total, priority=""), and data parallelism 2.
SGLANG = f"""# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="0"}} 7.0
sglang:num_running_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="1"}} 7.0
sglang:num_running_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="0",tp_rank="0"}} 2.0
sglang:num_running_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="10",tp_rank="0"}} 5.0
sglang:num_running_reqs{{dp_rank="1",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="0"}} 6.0
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="0"}} 2.0
sglang:num_queue_reqs{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="1"}} 2.0
sglang:num_queue_reqs{{dp_rank="1",engine_type="unified",model_name="{Q}",pp_rank="0",priority="",tp_rank="0"}} 1.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",tp_rank="0"}} 0.62
sglang:token_usage{{dp_rank="1",engine_type="unified",model_name="{Q}",pp_rank="0",tp_rank="0"}} 0.35
# HELP sglang:gen_throughput The generation throughput (token/s).
# TYPE sglang:gen_throughput gauge
sglang:gen_throughput{{dp_rank="0",engine_type="unified",model_name="{Q}",pp_rank="0",tp_rank="0"}} 812.4
"""

# llama.cpp's server with --metrics, 2 slots busy and 1 request deferred (captured from xllamacpp 2026.10.11549).
LLAMACPP = """# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 0
# HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 0
# HELP llamacpp:prompt_seconds_total Total time spent processing prompts
# TYPE llamacpp:prompt_seconds_total counter
llamacpp:prompt_seconds_total 0
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 0
# HELP llamacpp:tokens_predicted_seconds_total Total time spent generating tokens
# TYPE llamacpp:tokens_predicted_seconds_total counter
llamacpp:tokens_predicted_seconds_total 0
# HELP llamacpp:n_decode_total Total number of llama_decode() calls, excluding speculative decoding \
and multimodal decoding
# TYPE llamacpp:n_decode_total counter
llamacpp:n_decode_total 0
# HELP llamacpp:n_tokens_max Largest observed sequence length (prompt + generation)
# TYPE llamacpp:n_tokens_max counter
llamacpp:n_tokens_max 0
# HELP llamacpp:spec_decode_num_draft_tokens_total Speculative: Total draft tokens generated
# TYPE llamacpp:spec_decode_num_draft_tokens_total counter
llamacpp:spec_decode_num_draft_tokens_total 0
# HELP llamacpp:spec_decode_num_accepted_tokens_total Speculative: Total draft tokens accepted by the target model
# TYPE llamacpp:spec_decode_num_accepted_tokens_total counter
llamacpp:spec_decode_num_accepted_tokens_total 0
# HELP llamacpp:spec_decode_num_drafts_total Speculative: Total speculative decoding verification steps
# TYPE llamacpp:spec_decode_num_drafts_total counter
llamacpp:spec_decode_num_drafts_total 0
# HELP llamacpp:prompt_tokens_seconds Average prompt throughput in tokens/s
# TYPE llamacpp:prompt_tokens_seconds gauge
llamacpp:prompt_tokens_seconds 0
# HELP llamacpp:predicted_tokens_seconds Average generation throughput in tokens/s
# TYPE llamacpp:predicted_tokens_seconds gauge
llamacpp:predicted_tokens_seconds 0
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 1
# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call
# TYPE llamacpp:n_busy_slots_per_decode gauge
llamacpp:n_busy_slots_per_decode 0
"""

# Its GET /slots at the same moment (each slot's `params` shortened).
SLOTS = (
    '[{"id":0,"n_ctx":512,"speculative":false,"is_processing":true,"id_task":1,"n_prompt_tokens":38,'
    '"n_prompt_tokens_processed":0,"n_prompt_tokens_cache":0,"params":{"seed":4294967295,"temperature":0.8,'
    '"max_tokens":200,"n_predict":200,"stream":false},"next_token":[{"has_next_token":true,"has_new_line":false,'
    '"n_remain":200,"n_decoded":0}]},'
    '{"id":1,"n_ctx":512,"speculative":false,"is_processing":false,"id_task":-1,"n_prompt_tokens":0,'
    '"params":{"seed":4294967295},"next_token":[{"has_next_token":false}]},'
    '{"id":2,"n_ctx":512,"speculative":false,"is_processing":true,"id_task":0,"n_prompt_tokens":38,'
    '"params":{"seed":4294967295},"next_token":[{"has_next_token":true}]}]'
)


def test_vllm_sums_its_engine_cores_and_takes_the_fullest_kv_cache() -> None:
    assert detect(VLLM) == "vllm"
    assert parse_metrics(VLLM) == EngineLoad(running=21.0, waiting=3.0, slots=None, kv_usage=0.57)
    assert parse_metrics(VLLM, "vllm") == parse_metrics(VLLM)


def test_older_vllm_gives_its_kv_cache_as_gpu_cache_usage() -> None:
    assert parse_metrics(VLLM_OLD, "vllm") == EngineLoad(4.0, 1.0, None, 0.25)


def test_the_new_kv_name_wins_when_vllm_writes_both() -> None:
    both = VLLM + f'vllm:gpu_cache_usage_perc{{engine="0",model_name="{MODEL}"}} 0.99\n'
    load = parse_metrics(both)
    assert load is not None and load.kv_usage == 0.57


def test_sglang_counts_each_scheduler_once_and_skips_priority_breakdowns() -> None:
    assert detect(SGLANG) == "sglang"
    # dp_rank 0: 7 running (its two TP ranks and its breakdowns by priority are the same requests), dp_rank 1: 6.
    assert parse_metrics(SGLANG) == EngineLoad(running=13.0, waiting=3.0, slots=None, kv_usage=0.62)


def test_llamacpp_from_its_own_server() -> None:
    assert detect(LLAMACPP) == "llamacpp"
    assert parse_metrics(LLAMACPP) == EngineLoad(running=2.0, waiting=1.0, slots=None, kv_usage=None)


def test_llamacpp_slots_give_the_slot_count_and_the_busy_ones() -> None:
    assert parse_slots(SLOTS) == EngineLoad(running=2.0, waiting=0.0, slots=3, kv_usage=None)
    assert parse_slots(SLOTS.encode()) == parse_slots(SLOTS)


def test_an_explicit_kind_reads_only_its_own_gauges() -> None:
    assert parse_metrics(VLLM, "sglang") is None
    assert parse_metrics(LLAMACPP, "vllm") is None
    assert parse_metrics(SGLANG + VLLM, "sglang") == parse_metrics(SGLANG)


def test_labels_with_escapes_commas_and_braces_in_their_values() -> None:
    text = ('vllm:num_requests_running{model_name="a\\\\b \\"q\\" {x,y}",engine="0"} 5\n'
            'vllm:num_requests_waiting{model_name="a\\\\b \\"q\\" {x,y}",engine="0"} 2 1733550000000\n')
    assert parse_metrics(text) == EngineLoad(5.0, 2.0, None, None)


@pytest.mark.parametrize("text", [
    "",
    "\n\n# just comments\n",
    "<html><body><h1>404 Not Found</h1></body></html>",
    '{"error":{"code":501,"message":"This server does not support metrics endpoint.","type":"not_supported_error"}}',
    "vllm:num_requests_running 3\n",  # no waiting gauge: not a reading
    "vllm:num_requests_running{engine=\"0\" 3\nvllm:num_requests_waiting{engine=\"0\"} 1\n",  # unclosed labels
    "vllm:num_requests_running{engine=0} 3\nvllm:num_requests_waiting{engine=\"0\"} 1\n",  # unquoted value
    "vllm:num_requests_running three\nvllm:num_requests_waiting 1\n",
    "vllm:num_requests_running 3 4 5\nvllm:num_requests_waiting 1\n",
    "vllm:num_requests_running NaN\nvllm:num_requests_waiting 1\n",
    "vllm:num_requests_running -2\nvllm:num_requests_waiting 1\n",
    "vllm:num_requests_running_total 3\nvllm:num_requests_waiting 1\n",  # another metric with the same prefix
    "vllm:num_requests_running\nvllm:num_requests_waiting",
    "\x00\xff\ufffd vllm:num_requests_running{",
    "llamacpp:requests_processing +Inf\nllamacpp:requests_deferred 0\n",
])
def test_garbage_is_none(text: str) -> None:
    assert parse_metrics(text) is None
    assert detect(text) is None


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b"{}", b"<html>", b"\xff\xfe", b'{"error":{"code":501,"message":"This server does not '
    b'support slots endpoint."}}', b'[{"id":0}]', b'[{"id":0,"is_processing":1}]', b'["a"]', b'[{"is_processing":'
])
def test_garbage_slots_are_none(body: bytes) -> None:
    assert parse_slots(body) is None
