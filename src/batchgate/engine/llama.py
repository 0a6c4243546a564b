"""llama.cpp's own server engine, in process, through `xllamacpp` (prebuilt wheels, no compiler).

xllamacpp runs llama.cpp's C++ server: parallel slots, continuous batching, the model's chat
template, OpenAI-shaped answers. Its handle_* calls block until the answer is complete and
release the GIL meanwhile, so one worker thread per slot keeps every slot decoding.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from batchgate.errors import BatchgateError

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


class LlamaError(BatchgateError):
    """An error answer from llama.cpp (e.g. a prompt longer than the slot's context)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status
        self.error_type = "invalid_request_error" if 400 <= status < 500 else "server_error"


class LlamaServer:
    """One loaded GGUF model with `slots` parallel sequences. Construction loads it (blocking)."""

    def __init__(self, gguf: Path, slots: int, context_per_slot: int, threads: int | None) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_parallel = slots
        params.n_ctx = context_per_slot * slots  # llama.cpp splits n_ctx evenly across slots
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads or os.cpu_count() or 1
        params.verbosity = -1  # llama.cpp logs every request to stderr otherwise
        # The embedded server also listens on a random loopback port; nobody else should use it.
        params.api_keys = [secrets.token_urlsafe(32)]
        params.n_threads_http = 1
        self._server: Any = xllamacpp.Server(params)

    def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request, answered whole. Raises LlamaError when llama.cpp answers with an error."""
        answers: list[str] = []
        payload = json.dumps(body)
        # A JSON string in (rather than a dict) gives the JSON text to the callback, with no
        # Python-object conversion inside the extension.
        if endpoint == CHAT:
            self._server.handle_chat_completions(payload, answers.append)
        else:
            self._server.handle_completions(payload, answers.append)
        answer: dict[str, Any] = json.loads(answers[-1])
        error = answer.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            raise LlamaError(code if isinstance(code, int) else 500, str(error.get("message", error)))
        return answer

    def close(self) -> None:
        # The C++ destructor stops the server's loop and frees the model.
        self._server = None
