"""/v1/admin/keys: API keys (admin keys only; projects and their weights are in projects.py). Bootstrap the first
admin key with `batchgate keys create --project NAME --admin`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, json_body, principal
from batchgate.protocol.requests import CreateKey
from batchgate.store.base import KeyInfo


def key_object(k: KeyInfo, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": k.id, "object": "api_key", "project": k.project, "admin": k.admin,
                           "created_at": k.created_at}
    if secret is not None:
        out["key"] = secret  # shown once, at creation
    return out


async def create_key(request: Request) -> Response:
    auth = ctx(request).auth
    admin = auth.admin(await principal(request))  # before the body: a project key learns nothing from it
    info, secret = await auth.issue_key(admin, CreateKey.from_json(await json_body(request)))
    return JSON(key_object(info, secret))


async def list_keys(request: Request) -> Response:
    auth = ctx(request).auth
    keys = await auth.list_keys(auth.admin(await principal(request)))
    data = [key_object(k) for k in keys]
    return JSON({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                 "last_id": data[-1]["id"] if data else None, "has_more": False})


async def delete_key(request: Request) -> Response:
    auth = ctx(request).auth
    key_id = request.path_params["key_id"]
    await auth.revoke(auth.admin(await principal(request)), key_id)
    return JSON({"id": key_id, "object": "api_key", "deleted": True})


routes = [
    Route("/v1/admin/keys", create_key, methods=["POST"]),
    Route("/v1/admin/keys", list_keys, methods=["GET"]),
    Route("/v1/admin/keys/{key_id}", delete_key, methods=["DELETE"]),
]
