"""Admin-only operations are refused by AuthService itself, on a real SQLite store: they take an `Admin`, which
only `AuthService.admin` makes from a Principal (and the CLI's OPERATOR), so no route has a check of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from batchgate.errors import BatchgateError, PermissionDenied, Unauthorized
from batchgate.protocol.requests import CreateKey
from batchgate.services.auth import OPERATOR, Admin, AuthService, Principal
from batchgate.settings import Settings
from batchgate.store.factory import make_store

T = TypeVar("T")


def with_auth(tmp_path: Path, use: Callable[[AuthService], Awaitable[T]]) -> T:
    async def go() -> T:
        store = make_store(Settings(data_dir=tmp_path))
        await store.open()
        try:
            return await use(AuthService(store))
        finally:
            await store.close()

    return asyncio.run(go())


def test_only_an_admin_key_becomes_an_admin(tmp_path: Path) -> None:
    async def use(auth: AuthService) -> None:
        with pytest.raises(PermissionDenied) as refused:
            auth.admin(Principal("team", admin=False, key_id="key_1"))
        assert refused.value.envelope()["error"] == {
            "message": "You have insufficient permissions for this operation: it needs an admin key.",
            "type": "invalid_request_error", "param": None, "code": "insufficient_permissions",
        }
        ops = Principal("ops", admin=True, key_id="key_2")
        assert auth.admin(ops) == Admin(ops)

    with_auth(tmp_path, use)


def test_keys_are_issued_listed_and_revoked_by_an_admin(tmp_path: Path) -> None:
    async def use(auth: AuthService) -> None:
        admin = auth.admin(Principal("ops", admin=True))
        info, secret = await auth.issue_key(admin, CreateKey("team"))
        assert (info.project, info.admin) == ("team", False)
        assert await auth.authenticate(f"Bearer {secret}") == Principal("team", False, info.id)
        assert [k.id for k in await auth.list_keys(OPERATOR)] == [info.id]
        await auth.revoke(admin, info.id)
        assert await auth.list_keys(admin) == []

    with_auth(tmp_path, use)


def test_metrics_are_open_only_where_the_operator_opened_them(tmp_path: Path) -> None:
    async def use(auth: AuthService) -> list[int | None]:
        team = await auth.create_key("team")
        ops = await auth.create_key("ops", admin=True)
        await auth.operator_view(None, open_to_all=True)
        await auth.operator_view(f"Bearer {ops}", open_to_all=False)
        statuses: list[int | None] = []
        for header in (None, f"Bearer {team}"):
            try:
                await auth.operator_view(header, open_to_all=False)
                statuses.append(None)
            except (Unauthorized, PermissionDenied) as e:
                statuses.append(e.status_code)
        return statuses

    assert with_auth(tmp_path, use) == [401, 403]


def test_the_cli_keeps_the_rule_on_project_names(tmp_path: Path) -> None:
    async def use(auth: AuthService) -> str:
        return await auth.create_key("bad name!")

    with pytest.raises(BatchgateError) as e:
        with_auth(tmp_path, use)
    assert (e.value.status_code, e.value.param) == (400, "project")
