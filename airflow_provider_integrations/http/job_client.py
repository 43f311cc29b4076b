"""Submit, watch, cancel and read a partner's async jobs through one leased :class:`.HttpClient`.

Shared by ``JobStatusTrigger`` (the wait, and the cancel of its ``on_kill``) and ``AsyncJobOperator``
(submit, reconnect, the worker-side wait of its non-deferrable mode, the results), so a state, a
``Retry-After`` or a deadline mean the same wherever the job is watched.

Two time limits, on purpose separate:

- ``timeout_at`` ends the *wait*: the job keeps running at the partner and a later try reconnects to it;
- ``deadline`` ends the *job*: it is cancelled at the partner, then the wait ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_integrations.http.errors import (
    EXCERPT_LIMIT,
    ClientRequestError,
    FatalError,
    HttpError,
    RetriableError,
    redact_url,
)
from airflow_provider_integrations.http.jobs import (
    CancelResult,
    JobApi,
    JobEvent,
    JobOutcome,
    JobStatus,
    job_event,
)
from airflow_provider_integrations.http.pagination import paginator_from_spec
from airflow_provider_integrations.http.polling import bounded, poll_interval_for

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from airflow_provider_integrations.http.client import HttpClient, Response

__all__ = ["JobClient", "JobResults"]

log = logging.getLogger(__name__)

_ENDED: dict[str, JobStatus] = {"success": "success", "failure": "failure", "cancelled": "cancelled"}


@dataclass(frozen=True, slots=True)
class JobResults:
    """``value``: the list of items (paginated) or the results document; ``complete`` False when cut."""

    value: Any
    items: int
    pages: int
    complete: bool


class JobClient:
    """One kind of job (``spec``) on one leased client; cheap to build, holds no state of its own."""

    def __init__(self, api: HttpClient, spec: JobApi) -> None:
        self.api = api
        self.spec = spec

    async def submit(
        self,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Submit one job and return its id. With a key the connection's retries may repeat the POST."""
        spec = self.spec
        response = await self.api.request(
            spec.submit_method,
            spec.submit_endpoint,
            json=json,
            params=params,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        return spec.job_id_from(response.json(), response)

    def status_url(self, job_id: str) -> str:
        return redact_url(self.api.url_for(self.spec.path(self.spec.status_endpoint, job_id)))

    async def poll(self, job_id: str, url: str | None = None) -> JobOutcome:
        """One status request, judged; raises :class:`.HttpError` for errors (no retry loop here)."""
        # raise_for_status=False: one poll is one request; the poll interval is the retry.
        response = await self.api.request(
            "GET", self.spec.path(self.spec.status_endpoint, job_id), raise_for_status=False
        )
        return self.spec.judge(response, self.api.config.retry.retry_on_statuses, url or response.url)

    async def cancel(self, job_id: str) -> CancelResult:
        """Ask the partner to cancel; a 409 means the job had already ended."""
        spec = self.spec
        if spec.cancel_endpoint is None:
            return "not_supported"
        try:
            # A cancel is idempotent by nature: the key lets the connection's retries repeat it.
            await self.api.request(
                spec.cancel_method,
                spec.path(spec.cancel_endpoint, job_id),
                idempotency_key=f"cancel-{job_id}",
            )
        except ClientRequestError as exc:
            if exc.status == 409:
                return "already_terminal"
            raise
        return "sent"

    async def cancel_quietly(self, job_id: str) -> CancelResult:
        try:
            return await self.cancel(job_id)
        except HttpError as exc:
            log.warning("Cancelling job %s failed: %s", job_id, exc)
            return "failed"

    async def results(self, job_id: str, *, max_items: int) -> JobResults:
        """Read the results page by page, stopping after ``max_items`` items (``complete`` then False)."""
        spec = self.spec
        if spec.results_endpoint is None:
            raise ValueError("job_api.results_endpoint is not set")
        path = spec.path(spec.results_endpoint, job_id)
        if spec.results_pagination is None:
            response = await self.api.request("GET", path)
            document = response.json() if response.body else None
            count = len(document) if isinstance(document, list) else int(document is not None)
            return JobResults(document, count, 1, True)
        paginator = paginator_from_spec(spec.results_pagination)
        items: list[Any] = []
        # HttpClient.paginate is an async generator: closed here when the bound cuts the walk short.
        walk = cast("AsyncGenerator[Response, None]", self.api.paginate(paginator, path))
        async with aclosing(walk) as pages:
            async for page in pages:
                items.extend(paginator.items(page))
                if len(items) > max_items:
                    return JobResults(items[:max_items], max_items, paginator.pages + 1, False)
        return JobResults(items, len(items), paginator.pages, True)

    async def wait(
        self,
        job_id: str,
        *,
        poll_interval: float,
        backoff_factor: float = 1.0,
        max_poll_interval: float | None = None,
        timeout_at: float | None = None,
        deadline: float | None = None,
        max_consecutive_errors: int | None = None,
        max_document_bytes: int = 65_536,
    ) -> JobEvent:
        """Poll until the job ends, the wait times out, or the deadline passes (then cancel the job)."""
        started = time.monotonic()
        payload = await self._wait(
            job_id,
            poll_interval,
            backoff_factor,
            max_poll_interval,
            timeout_at,
            deadline,
            max_consecutive_errors,
            max_document_bytes,
        )
        payload["elapsed"] = round(time.monotonic() - started, 3)
        return payload

    async def _wait(
        self,
        job_id: str,
        interval: float,
        factor: float,
        cap: float | None,
        timeout_at: float | None,
        deadline: float | None,
        max_errors: int | None,
        max_bytes: int,
    ) -> JobEvent:
        url = self.status_url(job_id)
        polls = errors = 0
        state = ""
        while True:
            polls += 1
            wait = poll_interval_for(polls, interval, factor, cap)
            try:
                outcome = await self.poll(job_id, url)
            except FatalError as exc:
                return _error(job_id, url, exc, polls, state, fatal=True)
            except RetriableError as exc:
                errors += 1
                if max_errors is not None and errors >= max_errors:
                    return _error(job_id, url, exc, polls, state, fatal=False)
                log.warning("Status poll %d of job %s failed: %s; polling again", polls, job_id, exc)
                wait = max(wait, exc.retry_after or 0.0)
            else:
                errors = 0
                state = outcome.state or state
                if outcome.kind != "running":
                    return job_event(
                        _ENDED[outcome.kind],
                        job_id,
                        url,
                        state=state,
                        polls=polls,
                        http_status=outcome.http_status,
                        reason=f"the partner reports state {state!r}",
                        **bounded(outcome.document, max_bytes),
                    )
                wait = max(wait, outcome.retry_after or 0.0)
            now = time.time()
            if deadline is not None and now >= deadline:
                cancel = await self.cancel_quietly(job_id)
                reason = (
                    f"the job's deadline passed in state {state!r} after {polls} polls (cancel: {cancel})"
                )
                return job_event(
                    "deadline", job_id, url, state=state, polls=polls, reason=reason, cancel=cancel
                )
            if timeout_at is not None and now >= timeout_at:
                reason = f"still {state!r} after {polls} polls when the wait timed out; the job keeps running"
                return job_event("timeout", job_id, url, state=state, polls=polls, reason=reason)
            ends = [t for t in (deadline, timeout_at) if t is not None]
            if ends:
                wait = min(wait, max(0.0, min(ends) - now))
            await asyncio.sleep(wait)


def _error(job_id: str, url: str, exc: HttpError, polls: int, state: str, *, fatal: bool) -> JobEvent:
    return job_event(
        "error",
        job_id,
        exc.url or url,
        state=state,
        polls=polls,
        http_status=exc.status,
        reason=str(exc.args[0]),
        error_type=type(exc).__name__,
        fatal=fatal,
        excerpt=exc.excerpt[:EXCERPT_LIMIT],
    )
