"""The batch page's pause, resume and retry buttons (forms with the CSRF token), over plain HTTP."""

from __future__ import annotations

import re

from harness import BatchgateServer
from helpers import RawResponse, chat_line, raw, submit_batch, wait_for_batch, wait_until
from openai import OpenAI


def get(base: str, path: str, cookies: dict[str, str] | None = None) -> RawResponse:
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    return raw(base, "GET", path, headers=headers, api_key=None)


def post(base: str, path: str, form: str, token: str) -> RawResponse:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"bg_csrf={token}", "Origin": base}
    return raw(base, "POST", path, body=form, headers=headers, api_key=None)


def csrf_of(response: RawResponse) -> str:
    m = re.search(r"bg_csrf=([A-Za-z0-9_-]+)", response.headers.get("set-cookie", ""))
    assert m, response.headers
    return m.group(1)


def test_pause_resume_and_retry_buttons(server: BatchgateServer, client: OpenAI) -> None:
    token = csrf_of(get(server.url, "/ui/batches"))
    slow = submit_batch(client, [chat_line(f"slow-{i}", x_fake={"latency": 5}) for i in range(3)])
    wait_until(client, slow.id, lambda b: b.status == "in_progress")
    page = get(server.url, f"/ui/batches/{slow.id}").body.decode()
    assert 'id="pause"' in page and 'id="paused"' not in page
    r = post(server.url, f"/ui/batches/{slow.id}/pause", f"csrf={token}", token)
    assert r.status == 303 and r.headers["location"] == f"/ui/batches/{slow.id}"
    page = get(server.url, f"/ui/batches/{slow.id}").body.decode()
    assert 'id="paused"' in page and 'id="resume"' in page  # its requests are still in flight (5 s each)
    assert "paused" in get(server.url, "/ui/batches").body.decode()
    r = post(server.url, f"/ui/batches/{slow.id}/resume", f"csrf={token}", token)
    assert r.status == 303
    assert wait_for_batch(client, slow.id, timeout=60).status == "completed"
    page = get(server.url, f"/ui/batches/{slow.id}").body.decode()
    assert 'id="pause"' not in page and 'id="resume"' not in page
    r = post(server.url, f"/ui/batches/{slow.id}/pause", f"csrf={token}", token)
    assert r.status == 409 and "Cannot pause a batch with status" in r.body.decode()

    mixed = submit_batch(client, [chat_line("fine"), chat_line("refused", x_fake={"status": 400})])
    assert wait_for_batch(client, mixed.id).status == "completed"
    page = get(server.url, f"/ui/batches/{mixed.id}").body.decode()
    assert 'id="retry-failed"' in page and 'id="retry-unfinished"' not in page
    r = post(server.url, f"/ui/batches/{mixed.id}/retry", f"csrf={token}&only=failed", token)
    assert r.status == 303
    retry_id = r.headers["location"].rsplit("/", 1)[-1]
    assert retry_id != mixed.id
    page = get(server.url, f"/ui/batches/{retry_id}").body.decode()
    assert f'href="/ui/batches/{mixed.id}"' in page and "failed lines" in page
    retried = wait_for_batch(client, retry_id)
    assert retried.request_counts is not None and retried.request_counts.total == 1
