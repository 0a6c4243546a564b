"""/v1/admin/projects: every project (with a key or a weight) and its weight, its share of each upstream against
the other projects with work for it. Admin keys only, like the rest of /v1/admin."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.context import JSON, ctx, json_body, principal
from batchgate.domain.projects import Project
from batchgate.protocol.requests import SetProjectWeight


def project_object(p: Project) -> dict[str, Any]:
    return {"id": p.name, "object": "project", "name": p.name, "weight": p.weight}


async def list_projects(request: Request) -> Response:
    c = ctx(request)
    found = await c.projects.list(c.auth.admin(await principal(request)))
    data = [project_object(p) for p in found]
    return JSON({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                 "last_id": data[-1]["id"] if data else None, "has_more": False})


async def get_project(request: Request) -> Response:
    c = ctx(request)
    admin = c.auth.admin(await principal(request))
    return JSON(project_object(await c.projects.get(admin, request.path_params["project"])))


async def set_project(request: Request) -> Response:
    c = ctx(request)
    admin = c.auth.admin(await principal(request))  # before the body: a project key learns nothing from it
    req = SetProjectWeight.from_json(request.path_params["project"], await json_body(request))
    return JSON(project_object(await c.projects.set_weight(admin, req)))


routes = [
    Route("/v1/admin/projects", list_projects, methods=["GET"]),
    Route("/v1/admin/projects/{project}", get_project, methods=["GET"]),
    Route("/v1/admin/projects/{project}", set_project, methods=["POST"]),
]
