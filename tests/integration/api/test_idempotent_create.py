"""Idempotent create (an extension): the Idempotency-Key header on POST /v1/batches and POST /v1/files through the
official SDK's `extra_headers`, in the in-process app, on SQLite and on PostgreSQL: a repeat answers the same
object, another body under the same key is a 409, projects are independent, concurrent duplicates create one
object, a failed create leaves the key free; and the store's claims: expiry, stale claims, the purge."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from appkeys import project_keys
from helpers import chat_line, jsonl
from openai import OpenAI
from starlette.testclient import TestClient

from batchgate.api.app import create_app
from batchgate.domain.idempotency import CLAIM_STALE_SECONDS, KEY_TTL_SECONDS, CreateKind, IdempotencyRecord
from batchgate.settings import Settings
from batchgate.store.factory import make_store

KEY = "Idempotency-Key"


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    return Settings(data_dir=tmp_path, poll_interval=0.05, database_url=url)


@pytest.fixture
def clients(settings: Settings) -> Iterator[tuple[OpenAI, OpenAI]]:
    """SDK clients of two projects: alpha and beta."""
    switch_interval = sys.getswitchinterval()
    try:
        with TestClient(create_app(settings)) as http:
            yield tuple(  # type: ignore[misc]
                OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)
                for key in project_keys(settings, "alpha", "beta"))
    finally:
        sys.setswitchinterval(switch_interval)


INPUT = jsonl([chat_line("a", model="echo"), chat_line("b", model="echo")])


def create_batch(sdk: OpenAI, file_id: str, key: str | None, **meta: str) -> str:
    headers = {KEY: key} if key is not None else {}
    return sdk.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
                              metadata=meta or None, extra_headers=headers).id


def upload(sdk: OpenAI, key: str | None, content: bytes = INPUT, purpose: str = "batch") -> str:
    headers = {KEY: key} if key is not None else {}
    return sdk.files.create(file=("in.jsonl", content), purpose=purpose, extra_headers=headers).id  # type: ignore[arg-type]


def test_a_repeated_batch_create_answers_the_same_batch(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, beta = clients
    file_id = upload(alpha, None)
    first = create_batch(alpha, file_id, "k-1", run="one")
    assert create_batch(alpha, file_id, "k-1", run="one") == first
    assert [b.id for b in alpha.batches.list()] == [first]
    raw = alpha.batches.with_raw_response.create(
        input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "one"},
        extra_headers={KEY: "k-1"})
    assert raw.headers["idempotent-replayed"] == "true" and raw.parse().id == first
    # the same key with another body: 409 in OpenAI's envelope
    with pytest.raises(openai.ConflictError) as e:
        create_batch(alpha, file_id, "k-1", run="two")
    assert e.value.code == "idempotency_key_reused"
    assert e.value.body["param"] == KEY  # type: ignore[index]
    # another key, or no key, is another batch; another project's same key is its own
    second = create_batch(alpha, file_id, "k-2", run="one")
    assert second != first and create_batch(alpha, file_id, None) not in (first, second)
    beta_file = upload(beta, None)
    assert create_batch(beta, beta_file, "k-1", run="one") not in (first, second)
    assert len(alpha.batches.list().data) == 3 and len(beta.batches.list().data) == 1


def test_a_failed_create_leaves_the_key_free_and_bad_keys_are_400(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, _ = clients
    file_id = upload(alpha, None)
    with pytest.raises(openai.BadRequestError):
        alpha.batches.create(input_file_id=file_id, endpoint="/v1/nope", completion_window="24h",  # type: ignore[arg-type]
                             extra_headers={KEY: "k-bad"})
    assert create_batch(alpha, file_id, "k-bad") == create_batch(alpha, file_id, "k-bad")
    with pytest.raises(openai.BadRequestError) as e:
        create_batch(alpha, file_id, "x" * 256)
    assert e.value.code == "invalid_idempotency_key"


def test_a_repeated_upload_answers_the_same_file(clients: tuple[OpenAI, OpenAI]) -> None:
    alpha, beta = clients
    made = alpha.files.with_raw_response.create(file=("in.jsonl", INPUT), purpose="batch", extra_headers={KEY: "f-1"})
    first = made.parse().id
    assert made.headers["idempotent-replayed"] == "false"
    assert upload(alpha, "f-1") == first
    assert [f.id for f in alpha.files.list()] == [first]
    for other in ({"content": INPUT + jsonl([chat_line("c", model="echo")])}, {"purpose": "user_data"}):
        with pytest.raises(openai.ConflictError) as e:
            upload(alpha, "f-1", **other)  # type: ignore[arg-type]
        assert e.value.code == "idempotency_key_reused"
    # a key once used for a file cannot create a batch
    with pytest.raises(openai.ConflictError):
        create_batch(alpha, first, "f-1")
    assert upload(beta, "f-1") != first
    assert [f.id for f in alpha.files.list()] == [first]
    assert alpha.files.content(first).content == INPUT


@pytest.mark.parametrize("what", ["batch", "file"])
def test_concurrent_duplicates_create_one_object(clients: tuple[OpenAI, OpenAI], what: str) -> None:
    alpha, _ = clients
    file_id = upload(alpha, None)

    def once(_: int) -> str:
        return create_batch(alpha, file_id, "same") if what == "batch" else upload(alpha, "same")

    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(once, range(16)))
    assert len(made) == 1
    if what == "batch":
        assert [b.id for b in alpha.batches.list()] == list(made)
    else:
        assert {f.id for f in alpha.files.list()} == {file_id, *made}


def test_claims_expire_stale_claims_are_taken_over_and_expired_keys_purged(settings: Settings) -> None:
    async def go() -> None:
        store = make_store(settings)
        await store.open()
        try:
            def rec(owner: str, now: int, digest: str = "h") -> IdempotencyRecord:
                return IdempotencyRecord("p", "k", CreateKind.BATCH, digest, owner, None, now, now + KEY_TTL_SECONDS)

            t = 1_000_000
            assert (await store.claim_idempotency_key(rec("a", t), t, t - CLAIM_STALE_SECONDS)).owner == "a"
            # a live claim stays its owner's, whatever the other request's hash
            got = await store.claim_idempotency_key(rec("b", t + 1, "other"), t + 1, t + 1 - CLAIM_STALE_SECONDS)
            assert (got.owner, got.request_hash) == ("a", "h")
            # a claim that never created anything is taken over once stale
            later = t + CLAIM_STALE_SECONDS + 1
            assert (await store.claim_idempotency_key(rec("c", later), later, later - CLAIM_STALE_SECONDS)).owner == "c"
            assert await store.set_idempotency_object("p", "k", "c", "batch_1")
            assert not await store.set_idempotency_object("p", "k", "a", "batch_2")  # not a's any more
            # a created key stays, stale or not, until it expires
            much = later + 2 * CLAIM_STALE_SECONDS
            got = await store.claim_idempotency_key(rec("d", much), much, much - CLAIM_STALE_SECONDS)
            assert (got.owner, got.object_id) == ("c", "batch_1")
            gone = later + KEY_TTL_SECONDS
            assert (await store.claim_idempotency_key(rec("e", gone), gone, gone - CLAIM_STALE_SECONDS)).owner == "e"
            assert await store.purge_idempotency_keys(gone + KEY_TTL_SECONDS) == 1
            assert (await store.claim_idempotency_key(rec("f", t), t, t)).owner == "f"
        finally:
            await store.close()

    asyncio.run(go())
