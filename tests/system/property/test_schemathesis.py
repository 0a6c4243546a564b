"""schemathesis against batchgate's own OpenAPI schema (GET /openapi.json), on a server that requires a key.

Checks: no 5xx, status codes / content types / headers / bodies as documented, and that no operation works
without the key. Not checked (known, deliberate leniencies listed in docs/reliability.md):
`negative_data_rejection` (e.g. `order=` empty means the default, `expires_after` as one JSON form field is
ignored), `positive_data_acceptance` (the schema cannot say every rule, e.g. a batch upload must be JSONL),
`allow_header_conformance` (Starlette's 405 lists only the methods of the first route on a path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness import base_env, create_key
from helpers import raw

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "ignored_auth", "missing_required_header", "use_after_free",
])


def schemathesis_cli() -> list[str] | None:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("schemathesis")
    return [found] if found else None


def test_openapi_document_is_served(server: Any) -> None:
    response = raw(server.url, "GET", "/openapi.json")
    assert response.status == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/files", "/v1/batches", "/v1/uploads", "/v1/models", "/health"} <= set(doc["paths"])


def test_schemathesis_run(server_factory: Any, tmp_path: Path) -> None:
    cli = schemathesis_cli()
    if cli is None:
        pytest.skip("schemathesis is not installed (pip install 'batchgate[test]')")
    srv = server_factory(start=False)
    key = create_key(srv.data_dir, "st")
    srv.start()
    # One worker: two threads would parse lambda sources (hypothesis does, to describe strategies) at once, and
    # CPython 3.11's AST recursion counter is shared between threads (gh-106905): "AST constructor recursion
    # depth mismatch", at random.
    result = subprocess.run(
        [*cli, "run", srv.url + "/openapi.json", "--checks", CHECKS, "--max-examples", "25", "--seed", "1",
         "--header", f"Authorization: Bearer {key}", "--workers", "1", "--generation-database", "none",
         "--request-timeout", "20", "--no-color", "--phases", "examples,coverage,fuzzing,stateful"],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, env=base_env(), check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Traceback" not in srv.log_tail(10_000_000)
