"""The batches page (filterable, live) and one batch's page (timeline, counts, files, cancel, pause and resume,
retry, webhooks)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from batchgate.dashboard import session, views
from batchgate.dashboard.deps import services
from batchgate.dashboard.render import Renderer
from batchgate.domain.batch import Batch
from batchgate.domain.status import PAUSABLE, BatchStatus
from batchgate.errors import Conflict, InvalidValue
from batchgate.protocol.objects import estimated_completion
from batchgate.protocol.requests import RetryBatch
from batchgate.services.auth import Principal

SHOWN = 50  # rows per page


class BatchPages:
    def __init__(self, renderer: Renderer) -> None:
        self._r = renderer

    async def index(self, request: Request) -> Response:
        return RedirectResponse("/ui/batches", status_code=303)

    async def list(self, request: Request) -> Response:
        return await self._list(request, "batches.html")

    async def list_fragment(self, request: Request) -> Response:
        return await self._list(request, "_batches_table.html")

    async def _list(self, request: Request, template: str) -> Response:
        who = await session.principal(request)
        status = _status_filter(request.query_params.get("status"))
        after = request.query_params.get("after") or None
        found, next_after = await _find(request, who, status, after)
        now = time.time()
        rows = [(b, views.progress(b, now)) for b in found]
        return self._r.page(request, template, {
            "nav": "batches", "rows": rows, "status": status, "statuses": list(BatchStatus), "after": after,
            "next_after": next_after,
        }, who=who)

    async def detail(self, request: Request) -> Response:
        return await self._detail(request, "batch.html")

    async def detail_fragment(self, request: Request) -> Response:
        return await self._detail(request, "_batch_live.html")

    async def _detail(self, request: Request, template: str, notice: str | None = None,
                      status_code: int = 200) -> Response:
        who = await session.principal(request)
        c = services(request)
        batch = await c.batches.get(who, request.path_params["batch_id"])
        deliveries = await c.webhooks.deliveries_for_batch(who, batch.id)
        now = time.time()
        return self._r.page(request, template, {
            "nav": "batches", "b": batch, "p": views.progress(batch, now),
            "estimate": estimated_completion(batch), "now": now,
            "timeline": views.timeline(batch), "cancellable": views.cancellable(batch), "notice": notice,
            "pausable": batch.status in PAUSABLE, "retryable": views.retryable(batch),
            "deliveries": deliveries, "error_groups": views.error_groups(batch.errors),
        }, who=who, status_code=status_code)

    async def pause(self, request: Request) -> Response:
        return await self._act(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._act(request, "resume")

    async def retry(self, request: Request) -> Response:
        return await self._act(request, "retry")

    async def _act(self, request: Request, action: str) -> Response:
        """Pause, resume, or retry (the form's `only`: failed or unfinished lines), then show the batch it leaves:
        the same one, or the retry."""
        form = await session.checked_form(request)
        who = await session.principal(request)
        batches = services(request).batches
        batch_id = request.path_params["batch_id"]
        try:
            if action == "pause":
                shown = (await batches.pause(who, batch_id)).id
            elif action == "resume":
                shown = (await batches.resume(who, batch_id)).id
            else:
                only = form.get("only")
                shown = (await batches.retry(who, batch_id, RetryBatch.from_json({"only": only} if only else {}))).id
        except Conflict as e:
            return await self._detail(request, "batch.html", notice=e.message, status_code=409)
        return RedirectResponse(f"/ui/batches/{shown}", status_code=303)

    async def cancel(self, request: Request) -> Response:
        await session.checked_form(request)
        who = await session.principal(request)
        c = services(request)
        batch_id = request.path_params["batch_id"]
        try:
            await c.batches.cancel(who, batch_id)
        except Conflict as e:
            return await self._detail(request, "batch.html", notice=e.message, status_code=409)
        return RedirectResponse(f"/ui/batches/{batch_id}", status_code=303)


def _status_filter(raw: str | None) -> BatchStatus | None:
    if not raw:
        return None
    try:
        return BatchStatus(raw)
    except ValueError:
        allowed = ", ".join(s.value for s in BatchStatus)
        raise InvalidValue(f"Unknown status '{raw}'. Use one of: {allowed}.", param="status") from None


async def _find(
    request: Request, who: Principal, status: BatchStatus | None, after: str | None
) -> tuple[list[Batch], str | None]:
    """Up to SHOWN batches, newest first, of `status` if given; and where the next page starts (None: no more)."""
    page = await services(request).batches.list(who, after, SHOWN, status)
    return page.items, page.items[-1].id if page.has_more and page.items else None
