"""Submit a mixed set of requests to batchgate with the official OpenAI SDK, wait with a progress display,
and print the results joined by custom_id.

A batch has one endpoint, so the mix becomes two batches (chat completions and embeddings) that run at the
same time. Against `batchgate serve` on the embedded default (no upstream) this uses the local models:

    bash scripts/setup.sh && .venv/bin/batchgate serve &
    .venv/bin/python examples/mixed_batch.py

Use --chat-model echo --embed-model hash for the built-in models that need nothing installed.
"""

from __future__ import annotations

import argparse
import json
import time

from openai import OpenAI
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 12 times 12?",
]
SENTENCES = ["A cat sleeps on the mat.", "A kitten naps on a rug.", "Stock markets fell sharply today."]


def submit(client: OpenAI, endpoint: str, lines: list[dict]) -> str:
    data = "\n".join(json.dumps(x) for x in lines).encode()
    f = client.files.create(file=(f"{endpoint.rsplit('/', 1)[-1]}.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h").id  # type: ignore[arg-type]


def results(client: OpenAI, batch) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id:
            for raw in client.files.content(file_id).text.splitlines():
                line = json.loads(raw)
                out[line["custom_id"]] = line
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--api-key", default="local")
    ap.add_argument("--chat-model", default="SmolLM2-135M-Instruct")
    ap.add_argument("--embed-model", default="all-MiniLM-L6-v2")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    console = Console()

    chat = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": args.chat_model, "max_tokens": 48,
                      "messages": [{"role": "user", "content": q}]}} for i, q in enumerate(QUESTIONS)]
    embed = [{"custom_id": f"s{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": args.embed_model, "input": s}} for i, s in enumerate(SENTENCES)]
    ids = {"chat": submit(client, "/v1/chat/completions", chat), "embeddings": submit(client, "/v1/embeddings", embed)}

    batches = {}
    with Progress(TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
        bars = {k: progress.add_task(k, total=None, status="validating") for k in ids}
        while True:
            for kind, batch_id in ids.items():
                b = client.batches.retrieve(batch_id)
                batches[kind] = b
                c = b.request_counts
                progress.update(bars[kind], total=(c.total or None) if c else None,
                                completed=(c.completed + c.failed) if c else 0, status=b.status)
            if all(b.status in ("completed", "failed", "expired", "cancelled") for b in batches.values()):
                break
            time.sleep(0.5)

    table = Table("custom_id", "request", "result")
    answers = results(client, batches["chat"])
    for line, q in zip(chat, QUESTIONS, strict=True):
        r = answers.get(line["custom_id"], {})
        body = (r.get("response") or {}).get("body") or {}
        text = body["choices"][0]["message"]["content"] if "choices" in body else json.dumps(r.get("error") or body)
        table.add_row(line["custom_id"], q, text.strip())
    vectors = results(client, batches["embeddings"])
    for line, s in zip(embed, SENTENCES, strict=True):
        r = vectors.get(line["custom_id"], {})
        body = (r.get("response") or {}).get("body") or {}
        vec = body["data"][0]["embedding"] if "data" in body else None
        table.add_row(line["custom_id"], s, f"{len(vec)}-dim vector [{vec[0]:.3f}, {vec[1]:.3f}, ...]" if vec
                      else json.dumps(r.get("error") or body))
    console.print(table)


if __name__ == "__main__":
    main()
