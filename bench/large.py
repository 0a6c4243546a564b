"""Large batches: 1,000,000 chat lines of ~1 KB (about 1 GB) through `batchgate run` and through `batchgate serve`
against an instant upstream (bench/simulator.py), next to a 50,000-line batch of the same lines, in one run.

- time:  the small batch runs before and after the large one (the machine is shared: the mean of the two is
         the small batch's time in this run's conditions); the CPU seconds of the batchgate process are shown
         beside each time, as a figure that load from elsewhere moves less.
- run:   `batchgate run INPUT -o OUTPUT --upstream SIM` as a subprocess; time from start to exit.
- serve: a fresh `batchgate serve` per batch (per-batch limits set to 0: the server keeps OpenAI's by default);
         the official SDK uploads the file with the Uploads API (`uploads.upload_file_chunked`, 64 MB parts),
         creates the batch, polls it, streams the output file to disk; time from upload to the last byte.
- peak RSS of the batchgate process and its children: sampled every 50 ms (the tree), and the kernel's own
  high-water mark of the process (VmHWM), sampled as it runs.
- validation: a `serve` whose request limit is one below the file's lines validates the whole large file and
  then fails it (too_many_tasks), so it can be timed (create -> failed, polled every 100 ms, then every 10 ms
  near the end of the quickest run so far) five times without running it; each
  time next to a bare orjson parse of the same file (read, split, parse each line) on a thread at the
  worker thread's niceness, as `serve` validates; best of 5 each, and the same in CPU seconds (the serve
  process's, the parsing thread's), which load from elsewhere moves less.

Prints each measurement and the ratios the targets are about. Generated inputs live in a temp dir.
Run: .venv/bin/python bench/large.py [--lines 1000000] [--small 50000] [--line-bytes 1024] [--only run,serve]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from common import bare_parse, free_port, simulator, wait_http
from openai import OpenAI

from batchgate.wiring.worker_thread import WORKER_NICE

TERMINAL = ("completed", "failed", "cancelled", "expired")
UNLIMITED = {"BATCHGATE_MAX_BATCH_REQUESTS": "0", "BATCHGATE_MAX_BATCH_FILE_BYTES": "0"}
QUIET = {"BATCHGATE_LOG_LEVEL": "warning", "BATCHGATE_POLL_INTERVAL": "0.02"}


def make_file(path: Path, lines: int, line_bytes: int) -> int:
    """Chat lines of exactly `line_bytes` bytes (newline included), each with its own prompt text."""
    filler = ("lorem ipsum dolor sit amet consectetur adipiscing elit " * (line_bytes // 8 + 1)).encode()
    with path.open("wb", buffering=1 << 20) as fh:
        for i in range(lines):
            head = orjson.dumps({"custom_id": f"request-{i}", "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "sim", "max_tokens": 1,
                                          "messages": [{"role": "user", "content": ""}]}})
            text = f"{i} ".encode() + filler[: max(0, line_bytes - len(head) - len(str(i)) - 2)]
            fh.write(head.replace(b'"content":""', b'"content":"' + text + b'"', 1) + b"\n")
    return path.stat().st_size


def bare_parse_niced(path: Path) -> tuple[float, float]:
    """bare_parse on a thread at the niceness of serve's worker thread (the same share of a busy machine);
    returns (seconds, CPU seconds of that thread)."""
    out: list[tuple[float, float]] = []

    def go() -> None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
        cpu = time.thread_time()
        seconds = bare_parse(path)
        out.append((seconds, time.thread_time() - cpu))

    t = threading.Thread(target=go)
    t.start()
    t.join()
    return out[0]


def tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc/*/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split())
        except OSError:
            pass
    return out


def status_kib(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """Every 50 ms: the sum of VmRSS over the process tree, and the process's own high-water mark (VmHWM: no
    peak between two samples is missed, except in the last 50 ms of a process that exits). Not wait4's
    ru_maxrss: it carries the parent's high-water mark over fork and exec."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            self.peak_kib = max(self.peak_kib, sum(status_kib(p, "VmRSS") for p in tree(self.pid)),
                                status_kib(self.pid, "VmHWM"))

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak_kib


@dataclass
class Result:
    path: str
    lines: int
    seconds: float
    peak_mib: float
    cpu: float  # CPU seconds of the batchgate process over the same span
    phases: dict[str, float] = field(default_factory=dict)


def run_once(sim: str, src: Path, lines: int, tmp: Path) -> Result:
    out, err = tmp / "run-out.jsonl", tmp / "run-err.jsonl"
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "batchgate", "run", str(src), "-o", str(out), "--errors", str(err),
                          "--upstream", sim + "/v1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env={**os.environ, "TERM": "dumb"})
    sampler = RssSampler(p.pid)
    sampler.start()
    assert p.stderr is not None
    tail = p.stderr.read()[-2000:]  # the progress bar: read it as it comes, keep the end
    _, code, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    cpu = usage.ru_utime + usage.ru_stime
    p.returncode = os.waitstatus_to_exitcode(code)
    peak = sampler.stop()
    written = sum(1 for _ in out.open("rb")) if out.exists() else 0
    if p.returncode != 0 or written != lines:
        raise RuntimeError(f"run exited {p.returncode} with {written}/{lines} lines: {tail.decode(errors='replace')}")
    for f in (out, err):
        f.unlink(missing_ok=True)
    return Result("run", lines, seconds, peak / 1024, cpu)


@contextmanager
def server(sim: str, tmp: Path, env: dict[str, str] = UNLIMITED) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    data = tmp / f"serve-{port}"
    p = subprocess.Popen([sys.executable, "-m", "batchgate", "serve", "--port", str(port), "--data-dir", str(data),
                          "--upstream", sim + "/v1"], env={**os.environ, **QUIET, **env})
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        yield p, f"http://127.0.0.1:{port}/v1"
    finally:
        p.terminate()
        p.wait(60)
        subprocess.run(["rm", "-rf", str(data)], check=False)


def serve_once(sim: str, src: Path, lines: int, tmp: Path) -> Result:
    with server(sim, tmp) as (proc, base_url):
        sampler = RssSampler(proc.pid)
        sampler.start()
        client = OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=900)
        phases: dict[str, float] = {}
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        upload = client.uploads.upload_file_chunked(file=src, mime_type="application/jsonl", purpose="batch")
        assert upload.file is not None, upload
        t1 = time.perf_counter()
        phases["upload"] = t1 - t0
        b = client.batches.create(input_file_id=upload.file.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
        seen = {b.status: t1}
        while b.status not in TERMINAL:
            # Fine polling while validating (its end is a measurement), then a relaxed pace.
            time.sleep(0.02 if b.status == "validating" else 0.25)
            b = client.batches.retrieve(b.id)
            seen.setdefault(b.status, time.perf_counter())
        t2 = time.perf_counter()
        out = tmp / "serve-out.jsonl"
        written = 0
        if b.output_file_id is not None:
            with client.files.with_streaming_response.content(b.output_file_id) as response, out.open("wb") as fh:
                for block in response.iter_bytes(1 << 20):
                    written += block.count(b"\n")
                    fh.write(block)
        t3 = time.perf_counter()
        cpu = cpu_seconds(proc.pid) - cpu0
        client.close()
        peak = max(sampler.stop(), status_kib(proc.pid, "VmHWM"))
        out.unlink(missing_ok=True)
    if b.status != "completed" or written != lines:
        raise RuntimeError(f"serve: batch {b.status} with {written}/{lines} output lines: {b.errors}")
    marks = [("validating", t1), ("in_progress", seen.get("in_progress")), ("finalizing", seen.get("finalizing")),
             ("completed", seen.get("completed"))]
    for (name, start), (_, end) in itertools.pairwise(marks):
        if start is not None and end is not None:
            phases[name] = end - start
    phases["download"] = t3 - t2
    return Result("serve", lines, t3 - t0, peak / 1024, cpu, phases)


@dataclass
class Timing:
    seconds: float
    cpu: float


def validation_runs(sim: str, src: Path, lines: int, tmp: Path, runs: int) -> tuple[list[Timing], list[Timing]]:
    """`runs` validations of `src` in serve (create -> failed: the whole file read and checked; CPU of the serve
    process), each after a bare parse of the same file; returns (validations, bare parses)."""
    env = {**UNLIMITED, "BATCHGATE_MAX_BATCH_REQUESTS": str(lines - 1)}
    validations, bares = [], []
    with server(sim, tmp, env) as (proc, base_url):
        client = OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=900)
        upload = client.uploads.upload_file_chunked(file=src, mime_type="application/jsonl", purpose="batch")
        assert upload.file is not None, upload
        for _ in range(runs):
            bares.append(Timing(*bare_parse_niced(src)))
            # Each poll takes serve's API thread, and the GIL, a millisecond or two from the validating worker:
            # poll sparsely until near the end of the quickest run so far, then every 10 ms.
            quiet = 0.9 * min((v.seconds for v in validations), default=0.0)
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            b = client.batches.create(input_file_id=upload.file.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
            while b.status == "validating":
                time.sleep(0.01 if time.perf_counter() - t0 > quiet else 0.1)
                b = client.batches.retrieve(b.id)
            validations.append(Timing(time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0))
            codes = [e.code for e in b.errors.data] if b.errors else []
            if b.status != "failed" or codes != ["too_many_tasks"]:
                raise RuntimeError(f"validation run: batch {b.status} {b.errors}")
        client.close()
    return validations, bares


def show(r: Result) -> str:
    phases = ", ".join(f"{k} {v:.1f}" for k, v in r.phases.items())
    return (f"{r.path:5} {r.lines:>9,} lines: {r.seconds:7.1f} s ({r.lines / r.seconds:6,.0f} lines/s), "
            f"CPU {r.cpu:6.1f} s, peak RSS {r.peak_mib:4.0f} MiB" + (f"  [{phases}]" if phases else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=50_000)
    ap.add_argument("--line-bytes", type=int, default=1024)
    ap.add_argument("--only", default="run,serve", help="run, serve or both")
    ap.add_argument("--rss-limit-mb", type=float, default=300.0)
    ap.add_argument("--ratio-limit", type=float, default=22.0)
    ap.add_argument("--validations", type=int, default=5, help="validation runs, each next to a bare parse")
    a = ap.parse_args()
    paths = [p for p in ("run", "serve") if p in a.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="bg-large-") as name, \
            simulator("--slots", "100000", "--base", "0", "--tokens", "1") as sim:
        tmp = Path(name)
        small, big = tmp / "small.jsonl", tmp / "big.jsonl"
        make_file(small, a.small, a.line_bytes)
        size = make_file(big, a.lines, a.line_bytes)
        print(f"input: {a.lines:,} lines, {size / 1e6:,.0f} MB ({a.line_bytes} bytes a line); "
              f"small: {a.small:,} lines", flush=True)
        os.sync()  # the generated files on disk before anything is timed, not written back meanwhile
        validations, bares = validation_runs(sim, big, a.lines, tmp, a.validations) if "serve" in paths else ([], [])
        if validations:
            print(f"validation in serve, create -> failed, s (CPU s): "
                  f"{', '.join(f'{v.seconds:.2f} ({v.cpu:.2f})' for v in validations)}; bare orjson parse: "
                  f"{', '.join(f'{v.seconds:.2f} ({v.cpu:.2f})' for v in bares)}", flush=True)
        ok = True
        for path in paths:
            once = run_once if path == "run" else serve_once
            # The small batch before and after the large one: the machine is shared, and the mean of the two
            # is the small batch's time in this run's conditions.
            before = once(sim, small, a.small, tmp)
            print(show(before), flush=True)
            large = once(sim, big, a.lines, tmp)
            print(show(large), flush=True)
            after = once(sim, small, a.small, tmp)
            print(show(after), flush=True)
            small_s, small_cpu = (before.seconds + after.seconds) / 2, (before.cpu + after.cpu) / 2
            ratio, cpu_ratio = large.seconds / small_s, large.cpu / small_cpu
            peak = max(before.peak_mib, large.peak_mib, after.peak_mib)
            ok &= ratio <= a.ratio_limit and peak < a.rss_limit_mb
            print(f"{path}: time large/small {ratio:.1f} (target <= {a.ratio_limit:g} for {a.lines / a.small:g}x the "
                  f"lines; CPU large/small {cpu_ratio:.1f}); peak RSS {peak:.0f} MiB (target < {a.rss_limit_mb:g})",
                  flush=True)
        if validations:
            validate, bare = min(v.seconds for v in validations), min(v.seconds for v in bares)
            speed = bare / validate
            cpu_speed = min(v.cpu for v in bares) / min(v.cpu for v in validations)
            ok &= speed >= 0.5
            print(f"validation of the large file in serve (best of {len(validations)}): {validate:.2f} s = "
                  f"{size / 1e6 / validate:,.0f} MB/s; bare orjson parse (best of {len(bares)}): {bare:.2f} s = "
                  f"{size / 1e6 / bare:,.0f} MB/s; ratio validation/bare parse: {speed:.2f} (target >= 0.5; "
                  f"in CPU seconds: {cpu_speed:.2f})")
        print("all targets met" if ok else "TARGET MISSED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
