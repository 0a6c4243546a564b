"""The projects page: each project's weight and the share of every upstream it gets while all of them have work.
An admin sees every project (with a key or a weight); a project key sees its own. Weights are set with the admin
API or `batchgate projects set`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from batchgate.dashboard import session
from batchgate.dashboard.deps import services
from batchgate.dashboard.render import Renderer


class ProjectPages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    async def list(self, request: Request) -> Response:
        who = await session.principal(request)
        c = services(request)
        found = await c.projects.list(c.auth.admin(who)) if who.admin else [await c.projects.own(who)]
        total = sum(p.weight for p in found)
        rows = [(p, 100.0 * p.weight / total) for p in found]
        return self._r.page(request, "projects.html", {"nav": "projects", "rows": rows}, who=who)
