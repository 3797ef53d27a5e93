"""The Assistants v2 endpoints reconciler needs: runs of a thread, and the thread itself.

Each endpoint says how it may be retried: reads and metadata updates are safe, while creating
a run, cancelling one and submitting tool outputs may take effect twice. Pagination of a run
list refuses to loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from reconciler.client.answers import _kind
from reconciler.client.http_client import HttpClient
from reconciler.client.reading import JSONObject
from reconciler.client.retry import _Retry
from reconciler.client.text import sanitize
from reconciler.errors import ApiError


def _segment(value: str) -> str:
    """One path segment: an id can never add segments, a query or a fragment."""
    return quote(value, safe="")


class AssistantsClient(HttpClient):
    """Async client for the run and thread endpoints reconciler needs.

    Use as ``async with AssistantsClient(settings) as client``. ``transport`` is the seam for
    tests (``httpx.MockTransport``) and for the in-process emulator (``httpx.ASGITransport``).
    The base URL is checked (:func:`validate_base_url`) before anything else.
    """

    # -- runs ------------------------------------------------------------------------------

    def _list_error(self, thread_id: str, message: str) -> ApiError:
        thread = sanitize(thread_id, 80)
        return ApiError(
            f"the server's run list for {thread} {message}",
            operation=f"list runs of {thread}",
            host=self.host,
        )

    def _page_items(self, page: JSONObject, thread_id: str) -> list[JSONObject]:
        data = page.get("data")
        if not isinstance(data, list):
            raise self._list_error(thread_id, "has no 'data' array")
        for item in data:
            if not isinstance(item, dict):
                raise self._list_error(thread_id, f"has an item that is not an object "
                                                  f"({_kind(item)})")
        return data

    async def list_runs(self, thread_id: str, *, page_size: int = 100) -> list[JSONObject]:
        """Every run of a thread, newest first, following the cursor to the end.

        A list that repeats a cursor or a run, or goes on past ``max_pages``, is refused (it
        would loop, or be wrong); one that ignores ``limit``, omits ``has_more`` (the end) or
        ``last_id`` (the last item's id is the cursor) is read as the API would mean it.
        """
        runs: list[JSONObject] = []
        seen_runs: set[str] = set()
        seen_cursors: set[str] = set()
        after: str | None = None
        for page_number in itertools.count(1):
            if page_number > self.settings.max_pages:
                raise self._list_error(
                    thread_id,
                    f"goes on past {self.settings.max_pages} pages: refusing to read more",
                )
            params: dict[str, str | int] = {"limit": page_size, "order": "desc"}
            if after:
                params["after"] = after
            page = await self._request(
                "GET",
                f"threads/{_segment(thread_id)}/runs",
                params=params,
                operation=f"list runs of {thread_id}",
                retry=_Retry.SAFE,
            )
            data = self._page_items(page, thread_id)
            for item in data:
                run_id = item.get("id")
                if isinstance(run_id, str):
                    if run_id in seen_runs:
                        raise self._list_error(thread_id,
                                               f"lists run {sanitize(run_id, 80)} twice")
                    seen_runs.add(run_id)
            runs.extend(data)
            has_more = page.get("has_more")
            if has_more is None or has_more is False:
                return runs
            if has_more is not True:
                raise self._list_error(thread_id, "has a 'has_more' that is not true or false")
            cursor = page.get("last_id")
            if not isinstance(cursor, str) or not cursor:
                cursor = data[-1].get("id") if data else None
            if not isinstance(cursor, str) or not cursor:
                raise self._list_error(
                    thread_id, "says there is more but gives no cursor to go on from"
                )
            if cursor in seen_cursors:
                raise self._list_error(
                    thread_id, f"repeats cursor {sanitize(cursor, 80)}: refusing to loop"
                )
            seen_cursors.add(cursor)
            after = cursor
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_latest_run(self, thread_id: str) -> JSONObject | None:
        """The newest run of a thread: the only one that can be active."""
        page = await self._request(
            "GET",
            f"threads/{_segment(thread_id)}/runs",
            params={"limit": 1, "order": "desc"},
            operation=f"list runs of {thread_id}",
            retry=_Retry.SAFE,
        )
        data = self._page_items(page, thread_id)
        return data[0] if data else None

    async def get_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}",
            operation=f"get run {run_id}",
            retry=_Retry.SAFE,
        )

    async def create_run(self, thread_id: str, body: Mapping[str, Any]) -> JSONObject:
        """Create a run. Raises :class:`AmbiguousResultError` when it may have been created."""
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs",
            json=dict(body),
            operation=f"create run on {thread_id}",
            retry=_Retry.UNSAFE,
        )

    async def modify_run(
        self, thread_id: str, run_id: str, metadata: Mapping[str, str]
    ) -> JSONObject:
        """Replace a run's metadata (idempotent: sending the same map twice is harmless)."""
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}",
            json={"metadata": dict(metadata)},
            operation=f"modify run {run_id}",
            retry=_Retry.SAFE,
        )

    async def cancel_run(self, thread_id: str, run_id: str) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}/cancel",
            operation=f"cancel run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def submit_tool_outputs(
        self, thread_id: str, run_id: str, outputs: list[dict[str, str]]
    ) -> JSONObject:
        return await self._request(
            "POST",
            f"threads/{_segment(thread_id)}/runs/{_segment(run_id)}/submit_tool_outputs",
            json={"tool_outputs": outputs},
            operation=f"submit tool outputs to run {run_id}",
            retry=_Retry.UNSAFE,
        )

    async def get_thread(self, thread_id: str) -> JSONObject:
        return await self._request(
            "GET",
            f"threads/{_segment(thread_id)}",
            operation=f"get thread {thread_id}",
            retry=_Retry.SAFE,
        )
