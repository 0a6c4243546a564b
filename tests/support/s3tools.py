"""A real S3 API server for tests: moto's server (`moto[server]`) as a subprocess on a loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from harness import free_port, stop_process

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


class MotoServer:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]

    def env(self, bucket: str, prefix: str = "bg") -> dict[str, str]:
        """batchgate settings pointing at this server."""
        return {
            "BATCHGATE_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "BATCHGATE_S3_ENDPOINT_URL": self.url,
            "BATCHGATE_S3_REGION": REGION,
            "BATCHGATE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "BATCHGATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def stop(self) -> None:
        stop_process(self.proc, grace=5)
        self._log.close()
