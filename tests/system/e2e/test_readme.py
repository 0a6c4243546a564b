"""The README's quickstart runs as pasted: its requests.jsonl and its Python against a real `batchgate serve`
on the embedded default (local models), with only the port changed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from batchgate.engine import registry
from batchgate.engine.weights import WeightCheck

README = (Path(__file__).parents[3] / "README.md").read_text()


def quickstart() -> str:
    return README[README.index("## Quickstart"):README.index("One-shot, without a server")]


def block(lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", quickstart(), re.S)
    assert len(blocks) == 1, f"the quickstart should have one {lang} block"
    return str(blocks[0])


def test_quickstart_lines_are_valid_batch_lines() -> None:
    lines = [orjson.loads(raw) for raw in block("jsonl").splitlines() if raw.strip()]
    assert len(lines) == 3
    assert len({x["custom_id"] for x in lines}) == 3
    for x in lines:
        assert x["method"] == "POST" and x["url"] == "/v1/chat/completions"
        assert registry.find(x["body"]["model"]) is not None  # a local model, as the text says


def test_quickstart_never_reads_results_before_the_batch_ends() -> None:
    code = block("python")
    assert code.index("while batch.status not in") < code.index("output_file_id")


@pytest.mark.local_models
def test_quickstart_python_runs_verbatim(module_server_factory: Any, tmp_path: Path) -> None:
    if WeightCheck().verify(registry.SMOLLM) is None:
        pytest.skip("SmolLM2 is not installed (the [local] extra and scripts/install-local-models.sh)")
    server = module_server_factory(upstream=None)
    (tmp_path / "requests.jsonl").write_text(block("jsonl"))
    code = block("python").replace("http://127.0.0.1:8000/v1", server.base_url)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "completed" in out
    results = [orjson.loads(raw) for raw in out.splitlines() if raw.startswith('{"id"')]
    assert sorted(r["custom_id"] for r in results) == ["q1", "q2", "q3"]
    assert all(r["response"]["status_code"] == 200 for r in results)
