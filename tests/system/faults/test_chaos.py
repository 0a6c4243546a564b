"""Crash anywhere: `bench/chaos.py --quick` (2,000 requests, five `kill -9`s at random moments, restarts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness import base_env

CHAOS = Path(__file__).resolve().parents[3] / "bench" / "chaos.py"


def test_chaos_quick() -> None:
    result = subprocess.run([sys.executable, str(CHAOS), "--quick"], capture_output=True, text=True, timeout=240,
                            env=base_env(), check=False)
    start = result.stdout.find("{")
    assert start >= 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout[start:])
    assert report["problems"] == [], report
    assert result.returncode == 0, result.stderr[-3000:]
    assert report["status"] == "completed"
    assert report["request_counts"] == {"total": 2000, "completed": 2000, "failed": 0}
    assert len(report["moments"]) == 5
    # Requests sent more than once, reported (seed in the report reproduces the run).
    print(f"chaos seed {report['seed']}: {report['duplicate_sends']} duplicate sends over 5 kills "
          f"(per kill {[m['resent_after'] for m in report['moments']]}, window {report['window']})")
    assert all(m["resent_after"] <= report["window"] for m in report["moments"])  # at most the window per kill
    assert report["duplicate_sends"] <= report["window"] * 5
