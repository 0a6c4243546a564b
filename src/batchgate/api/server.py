"""Running the app under uvicorn, with one difference: a SIGTERM or SIGINT that ends in a clean shutdown exits
with status 0 (uvicorn re-raises the signal afterwards, so supervisors would see a crash)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Generator
from typing import Any

import uvicorn

HANDLED = (signal.SIGINT, signal.SIGTERM)


class GracefulServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve_app(app: Any, host: str, port: int, log_level: str) -> None:
    # log_config=None: uvicorn's own lines go through batchgate's handler and format.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10,
                            access_log=False, log_config=None)
    GracefulServer(config).run()
