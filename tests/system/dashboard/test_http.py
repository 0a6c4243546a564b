"""The dashboard over plain HTTP: login and cookies, CSRF, error pages instead of 500s or JSON, escaping."""

from __future__ import annotations

import re
from typing import Any

import pytest
from harness import BatchgateServer
from helpers import RawResponse, chat_line, raw, submit_batch, wait_for_batch
from openai import OpenAI

from batchgate.dashboard.files import attachment

from .support import KeyedServer


def get(base: str, path: str, cookies: dict[str, str] | None = None, **headers: str) -> RawResponse:
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return raw(base, "GET", path, headers=headers, api_key=None)


def post(base: str, path: str, form: str, cookies: dict[str, str] | None = None, **headers: str) -> RawResponse:
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return raw(base, "POST", path, body=form, headers=headers, api_key=None)


def csrf_of(response: RawResponse) -> str:
    m = re.search(r"bg_csrf=([A-Za-z0-9_-]+)", response.headers.get("set-cookie", ""))
    assert m, response.headers
    return m.group(1)


def is_html(response: RawResponse) -> bool:
    return response.headers.get("content-type", "").startswith("text/html")


# -- no keys (the session server, loopback): the dashboard opens without login, like the API ----------------
def test_pages_open_without_login_when_no_keys_exist(server: BatchgateServer) -> None:
    for path in ("/ui/batches", "/ui/files", "/ui/upstreams", "/ui/fragments/batches", "/ui/fragments/upstreams"):
        r = get(server.url, path)
        assert r.status == 200 and is_html(r), (path, r.status, r.body[:300])
    assert get(server.url, "/ui/login").headers["location"] == "/ui/batches"
    assert get(server.url, "/ui/").headers["location"] == "/ui/batches"
    bare = get(server.url, "/ui")  # the API answers an unknown trailing slash with a 404; the dashboard's root
    assert (bare.status, bare.headers["location"]) == (307, "/ui/")  # still leads into it
    assert b"Upstreams" in get(server.url, "/ui/upstreams").body


def test_the_bare_address_leads_to_the_dashboard(server: BatchgateServer) -> None:
    # a browser pointed at http://host:port/ (what people type after reading the start-up line) lands on /ui
    root = get(server.url, "/")
    assert (root.status, root.headers["location"]) == (307, "/ui/")
    assert get(server.url, "/ui/").headers["location"] == "/ui/batches"
    assert get(server.url, "//").status == 404  # only the root itself: other unknown paths stay 404s


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/ui/batches/batch_nope", 404, b"No batch found with id"),
    ("/ui/fragments/batches/batch_nope", 404, b"No batch found with id"),
    ("/ui/files/file-nope/content", 404, b"No such File object"),
    ("/ui/no/such/page", 404, b"There is no such page."),
    ("/ui/batches?status=bogus", 400, b"Unknown status"),
    ("/ui/files?purpose=%3Cscript%3E", 400, b"Unknown purpose &#39;&lt;script&gt;&#39;"),
    ("/ui/batches?after=batch_nope", 200, b"No batches"),
])
def test_bad_input_gets_an_html_error_page(server: BatchgateServer, path: str, status: int, text: bytes) -> None:
    r = get(server.url, path)
    assert r.status == status and is_html(r), (r.status, r.body[:300])
    assert text in r.body


def test_security_headers_and_csrf_cookie(server: BatchgateServer) -> None:
    r = get(server.url, "/ui/batches")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would be dropped by the browser
    behind_tls = get(server.url, "/ui/batches", **{"X-Forwarded-Proto": "https"})  # a proxy on this host
    assert "Secure" in behind_tls.headers["set-cookie"]


def test_cancel_needs_the_csrf_token_and_our_origin(server: BatchgateServer, client: OpenAI) -> None:
    batch = submit_batch(client, [chat_line("csrf", x_fake={"latency": 30})])
    path = f"/ui/batches/{batch.id}/cancel"
    token = csrf_of(get(server.url, "/ui/batches"))
    forged = [
        post(server.url, path, ""),  # no cookie, no token
        post(server.url, path, f"csrf={token}"),  # token but no cookie
        post(server.url, path, "csrf=" + "x" * 43, cookies={"bg_csrf": token}),  # mismatch
        post(server.url, path, f"csrf={token}", cookies={"bg_csrf": token}, Origin="http://evil.example"),
    ]
    for r in forged:
        assert r.status == 403 and is_html(r), (r.status, r.body[:300])
    assert client.batches.retrieve(batch.id).status in ("validating", "in_progress")

    r = post(server.url, path, f"csrf={token}", cookies={"bg_csrf": token}, Origin=server.url)
    assert r.status == 303 and r.headers["location"] == f"/ui/batches/{batch.id}"
    assert wait_for_batch(client, batch.id, timeout=30).status == "cancelled"
    done = wait_for_batch(client, submit_batch(client, [chat_line("quick")]).id)
    late = post(server.url, f"/ui/batches/{done.id}/cancel", f"csrf={token}", cookies={"bg_csrf": token})
    assert late.status == 409 and b"Cannot cancel a batch with status &#39;completed&#39;" in late.body


def test_everything_shown_is_escaped(server: BatchgateServer, client: OpenAI) -> None:
    evil = '<img src=x onerror="alert(1)">'
    batch = submit_batch(client, [chat_line("esc")], metadata={"k": evil})
    client.files.create(file=(evil + ".jsonl", b'{"a": 1}\n'), purpose="batch")
    page = get(server.url, f"/ui/batches/{batch.id}").body
    files = get(server.url, "/ui/files").body
    for body in (page, files):
        assert b"<img src=x" not in body and b"&lt;img src=x onerror=" in body


def test_download_names_survive_odd_filenames(server: BatchgateServer, client: OpenAI) -> None:
    f = client.files.create(file=("a;\u00e9 b.jsonl", b'{"a": 1}\n'), purpose="batch")
    r = get(server.url, f"/ui/files/{f.id}/content")
    assert r.status == 200 and r.body == b'{"a": 1}\n'
    expected = "attachment; filename=\"a__ b.jsonl\"; filename*=UTF-8''a%3B%C3%A9%20b.jsonl"
    assert r.headers["content-disposition"] == expected
    assert attachment('x"\\\r\n.jsonl') == "attachment; filename=\"x____.jsonl\"; filename*=UTF-8''x%22%5C%0D%0A.jsonl"


# -- with keys: login, the session cookie, logout ------------------------------------------------------------
def login(keyed: KeyedServer, key: str, **headers: str) -> tuple[RawResponse, dict[str, str]]:
    token = csrf_of(get(keyed.url, "/ui/login"))
    r = post(keyed.url, "/ui/login", f"csrf={token}&key={key}", cookies={"bg_csrf": token}, **headers)
    m = re.search(r"bg_session=([^;]+)", r.headers.get("set-cookie", ""))
    return r, {"bg_csrf": token, **({"bg_session": m.group(1)} if m else {})}


def test_pages_need_a_login_once_keys_exist(keyed: KeyedServer) -> None:
    r = get(keyed.url, "/ui/batches")
    assert r.status == 303 and r.headers["location"] == "/ui/login"
    poll = get(keyed.url, "/ui/fragments/batches", **{"HX-Request": "true"})
    assert poll.status == 200 and poll.headers["hx-redirect"] == "/ui/login"
    for path in ("/ui/files", "/ui/upstreams", "/ui/files/file-x/content", "/ui/batches/batch_x"):
        assert get(keyed.url, path).headers.get("location") == "/ui/login", path
    stale = get(keyed.url, "/ui/batches", cookies={"bg_session": "bg-revoked"})
    assert stale.headers["location"] == "/ui/login"
    assert 'bg_session=""' in stale.headers["set-cookie"]  # the bad cookie is cleared


def test_login_sets_a_strict_http_only_cookie(keyed: KeyedServer) -> None:
    r, cookies = login(keyed, keyed.alpha)
    assert r.status == 303 and r.headers["location"] == "/ui/batches"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie and "Secure" not in cookie
    page = get(keyed.url, "/ui/batches", cookies=cookies)
    assert page.status == 200 and b"project <b>alpha</b>" in page.body
    secure, _ = login(keyed, keyed.alpha, **{"X-Forwarded-Proto": "https"})
    assert "Secure" in secure.headers["set-cookie"]


@pytest.mark.parametrize("form", ["key=bg-wrong", "key=", "", "key=%ff%fe"])
def test_bad_logins(keyed: KeyedServer, form: str) -> None:
    token = csrf_of(get(keyed.url, "/ui/login"))
    r = post(keyed.url, "/ui/login", f"csrf={token}&{form}", cookies={"bg_csrf": token})
    assert r.status == 401 and b"That API key is not valid." in r.body
    assert "bg_session" not in r.headers.get("set-cookie", "")
    no_token = post(keyed.url, "/ui/login", f"key={keyed.alpha}")
    assert no_token.status == 403 and "bg_session" not in no_token.headers.get("set-cookie", "")


def test_logout_needs_the_token_and_clears_the_cookie(keyed: KeyedServer) -> None:
    _, cookies = login(keyed, keyed.beta)
    assert post(keyed.url, "/ui/logout", "", cookies=cookies).status == 403
    r = post(keyed.url, "/ui/logout", f"csrf={cookies['bg_csrf']}", cookies=cookies)
    assert r.status == 303 and r.headers["location"] == "/ui/login"
    assert 'bg_session=""' in r.headers["set-cookie"]


def test_a_form_too_large_is_refused(keyed: KeyedServer) -> None:
    r = post(keyed.url, "/ui/login", "key=" + "a" * 20_000)
    assert r.status == 413 and is_html(r)


def test_other_projects_batches_stay_hidden(keyed: KeyedServer) -> None:
    alpha: Any = keyed.server.client(api_key=keyed.alpha)
    batch = submit_batch(alpha, [chat_line("mine")])
    _, beta = login(keyed, keyed.beta)
    assert batch.id.encode() not in get(keyed.url, "/ui/batches", cookies=beta).body
    assert get(keyed.url, f"/ui/batches/{batch.id}", cookies=beta).status == 404
    assert get(keyed.url, f"/ui/files/{batch.input_file_id}/content", cookies=beta).status == 404
    post_cancel = post(keyed.url, f"/ui/batches/{batch.id}/cancel", f"csrf={beta['bg_csrf']}", cookies=beta)
    assert post_cancel.status == 404
    _, mine = login(keyed, keyed.alpha)
    assert get(keyed.url, f"/ui/batches/{batch.id}", cookies=mine).status == 200


def test_status_filter_finds_batches_behind_a_thousand_newer_ones(server_factory: Any) -> None:
    """The filter is the store's: one failed batch behind 1001 newer completed ones is on the first page."""
    import asyncio

    from batchgate.domain.batch import Batch
    from batchgate.domain.status import BatchStatus
    from batchgate.settings import Settings
    from batchgate.store.sqlite import SQLiteStore

    srv: BatchgateServer = server_factory(start=False)

    def seeded(i: int, status: BatchStatus) -> Batch:
        return Batch(f"batch_seed{i:05d}", "default", "/v1/chat/completions", "file-x", "24h", status,
                     created_at=1000 + i, expires_at=100_000 + i)

    async def seed() -> None:
        store = SQLiteStore(Settings(data_dir=srv.data_dir).db_path)
        await store.open()
        try:
            await store.insert_batch(seeded(0, BatchStatus.FAILED))
            for i in range(1, 1002):
                await store.insert_batch(seeded(i, BatchStatus.COMPLETED))
        finally:
            await store.close()

    asyncio.run(seed())
    srv.start()
    failed = get(srv.url, "/ui/fragments/batches?status=failed")
    assert failed.status == 200 and failed.body.count(b"<tr data-batch=") == 1, failed.body[:500]
    assert b'data-batch="batch_seed00000"' in failed.body and b"Older batches" not in failed.body
    done = get(srv.url, "/ui/fragments/batches?status=completed")
    assert done.body.count(b"<tr data-batch=") == 50 and b"status=completed&after=batch_seed00952" in done.body
