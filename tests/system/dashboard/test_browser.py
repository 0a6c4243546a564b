"""The dashboard in a real browser: log in, watch a batch run to completion, open it, download its output,
cancel another through the button, and see that another project's key sees none of it. Each page's
screenshot lands in test-artifacts/screenshots/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from helpers import chat_line, submit_batch, unique, wait_for_batch
from openai import OpenAI

from .support import UPSTREAM_CONCURRENCY, KeyedServer, screenshot

LATENCY = 0.5  # seconds per request at the fake upstream: 24 requests, 2 at a time, run for about 6 s


@pytest.fixture(scope="module")
def alpha(keyed: KeyedServer) -> OpenAI:
    return keyed.server.client(api_key=keyed.alpha)


def log_in(page: Any, keyed: KeyedServer, key: str) -> None:
    page.goto(keyed.url + "/ui/batches")
    page.wait_for_url("**/ui/login")
    page.fill("#key", key)
    page.click("#login")
    page.wait_for_url("**/ui/batches")


def test_bad_key_shows_an_error(page: Any, keyed: KeyedServer) -> None:
    page.goto(keyed.url + "/ui/batches")
    page.wait_for_url("**/ui/login")
    page.fill("#key", "bg-not-a-real-key")
    page.click("#login")
    assert page.locator("#login-error").inner_text() == "That API key is not valid."
    screenshot(page, "login")
    page.goto(keyed.url + "/ui/batches")
    page.wait_for_url("**/ui/login")  # still not logged in


def test_watch_a_batch_complete_open_it_and_download_its_output(
    page: Any, keyed: KeyedServer, alpha: OpenAI, tmp_path: Path
) -> None:
    log_in(page, keyed, keyed.alpha)
    lines = [chat_line(f"req-{i}", x_fake={"latency": LATENCY}) for i in range(24)]
    batch = submit_batch(alpha, lines, metadata={"note": "<script>alert(1)</script>"})
    row = page.locator(f"tr[data-batch='{batch.id}']")
    row.wait_for()  # appears by itself: the table polls

    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + 40
    while not seen or seen[-1][0] != "completed":
        assert time.monotonic() < deadline, f"batch not completed on the page; saw {seen}"
        status = row.get_attribute("data-status") or ""
        value = float(row.locator("progress").get_attribute("value") or 0)
        if not seen or seen[-1] != (status, value):
            seen.append((status, value))
            if status == "in_progress" and 0 < value < 100:
                screenshot(page, "batches")
        time.sleep(0.2)
    assert any(s == "in_progress" and 0 < v < 100 for s, v in seen), seen  # progress was visible midway
    assert seen[-1] == ("completed", 100.0)
    assert row.locator(".counts").inner_text() == "24 / 24"

    page.click(f"a[href='/ui/batches/{batch.id}']")
    page.wait_for_url(f"**/ui/batches/{batch.id}")
    assert page.locator("#status").inner_text() == "completed"
    assert page.locator("#counts").inner_text() == "24 completed · 0 failed · 24 total"
    timeline = page.locator("#timeline").inner_text()
    for status in ("validating", "in_progress", "finalizing", "completed"):
        assert status in timeline
    assert "<script>alert(1)</script>" in page.locator(".facts").last.inner_text()  # shown as text, not run
    assert page.locator("#cancel").count() == 0
    screenshot(page, "batch")

    done = alpha.batches.retrieve(batch.id)
    assert done.output_file_id is not None
    with page.expect_download() as info:
        page.click("#download-output")
    saved = tmp_path / "output.jsonl"
    info.value.save_as(saved)
    assert saved.read_bytes() == alpha.files.content(done.output_file_id).content
    with page.expect_download() as info:
        page.click("#download-input")
    info.value.save_as(tmp_path / "input.jsonl")
    assert (tmp_path / "input.jsonl").read_bytes() == alpha.files.content(batch.input_file_id).content


def test_cancel_a_batch_with_the_button(page: Any, keyed: KeyedServer, alpha: OpenAI) -> None:
    lines = [chat_line(unique("slow"), x_fake={"latency": 2.0}) for _ in range(40)]
    batch = submit_batch(alpha, lines)
    log_in(page, keyed, keyed.alpha)
    page.goto(f"{keyed.url}/ui/batches/{batch.id}")
    page.click("#cancel")
    page.wait_for_url(f"**/ui/batches/{batch.id}")
    page.wait_for_selector("#batch-live[data-status='cancelled']", timeout=20_000)  # the page polls until then
    assert page.locator("#status").inner_text() == "cancelled"
    assert "cancelling" in page.locator("#timeline").inner_text()
    assert alpha.batches.retrieve(batch.id).status == "cancelled"
    page.goto(keyed.url + "/ui/batches?status=cancelled")
    assert page.locator(f"tr[data-batch='{batch.id}']").get_attribute("data-status") == "cancelled"


def test_files_and_upstreams_pages(page: Any, keyed: KeyedServer, alpha: OpenAI) -> None:
    file_id = alpha.files.create(file=("pages.jsonl", b'{"custom_id": "a"}\n'), purpose="batch").id
    log_in(page, keyed, keyed.alpha)
    page.click("nav >> text=Files")
    page.wait_for_url("**/ui/files")
    row = page.locator(f"tr[data-file='{file_id}']")
    assert "pages.jsonl" in row.inner_text() and "batch" in row.inner_text()
    screenshot(page, "files")
    with page.expect_download() as info:
        row.locator("a").click()
    assert info.value.suggested_filename == "pages.jsonl"

    page.click("nav >> text=Upstreams")
    page.wait_for_url("**/ui/upstreams")
    upstream = page.locator("tr[data-upstream='default']")
    cells = upstream.locator("td").all_inner_texts()
    assert cells[2].endswith(f"/ {UPSTREAM_CONCURRENCY}")  # the window is capped by the configured concurrency
    assert int(cells[7]) >= 24 and cells[8].startswith("0.0%")  # requests sent so far, none failed
    screenshot(page, "upstreams")


def test_another_project_sees_nothing_of_it(page: Any, keyed: KeyedServer, alpha: OpenAI) -> None:
    batch = submit_batch(alpha, [chat_line("only-alpha")])
    done = wait_for_batch(alpha, batch.id)
    log_in(page, keyed, keyed.beta)
    assert "project beta" in page.locator(".who").inner_text()
    assert page.locator(f"tr[data-batch='{batch.id}']").count() == 0
    response = page.goto(f"{keyed.url}/ui/batches/{batch.id}")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "404 · Not found"
    response = page.goto(f"{keyed.url}/ui/files/{done.output_file_id}/content")
    assert response is not None and response.status == 404
    page.goto(keyed.url + "/ui/files")
    assert page.locator(f"tr[data-file='{batch.input_file_id}']").count() == 0


def test_logout(page: Any, keyed: KeyedServer) -> None:
    log_in(page, keyed, keyed.alpha)
    page.click("#logout")
    page.wait_for_url("**/ui/login")
    page.goto(keyed.url + "/ui/files")
    page.wait_for_url("**/ui/login")
