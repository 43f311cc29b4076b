"""``ApiPollTrigger``: poll an ``integration_http`` endpoint until a success or failure condition holds.

One trigger leases the process's shared client of its connection once, for its whole life, so ten
thousand triggers of one connection in a triggerer share one session, one connection pool and one
connection lookup. After every non-terminal answer and every error it sleeps: the poll interval (grown
by ``backoff_factor`` up to ``max_poll_interval``), or longer when the partner sends ``Retry-After``.
It never polls in a tight loop.

How an answer is judged lives in :mod:`airflow_provider_integrations.http.polling` (shared with the
sensor's poke mode). In short: 429, 5xx and network errors are transient (logged, then the next poll
after the interval or ``Retry-After``; ``max_consecutive_errors`` bounds them), ``pending_statuses`` mean
"not yet", and any other 4xx, 403 included, is fatal: one request, then an error event with the status
and the URL. Waiting cannot fix a revoked credential, and the official ``HttpSensorTrigger`` retries
exactly those in a tight loop (apache/airflow#69903). A 403 that is expected while a grant propagates
goes in ``pending_statuses`` and waits the interval like any "not yet".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import FatalError, RetriableError, redact_url
from airflow_provider_integrations.http.polling import (
    PollEvent,
    PollOutcome,
    PollRules,
    bounded,
    error_event,
    event,
    poll_interval_for,
)
from airflow_provider_integrations.triggers._process import tune_process_once

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import HttpClient

__all__ = ["ApiPollTrigger", "PollEvent"]


class ApiPollTrigger(BaseTrigger):
    """Poll ``endpoint`` of an ``integration_http`` connection until a condition holds.

    :param conn_id: the ``integration_http`` connection id.
    :param endpoint: path under the connection's base URL.
    :param method: HTTP method (GET unless the partner's status call is a POST search).
    :param params: query parameters.
    :param headers: extra request headers.
    :param success_condition: condition (:mod:`..http.conditions`) meaning "done"; None: any 2xx.
    :param failure_condition: condition meaning "failed at the partner", checked first.
    :param pending_statuses: HTTP statuses meaning "not yet" (wait the interval) instead of an error.
    :param response_filter: JMESPath applied to the success document before it is returned.
    :param poll_interval: seconds between polls.
    :param backoff_factor: growth of the interval per poll (1.0: constant).
    :param max_poll_interval: upper bound of the grown interval.
    :param deadline: Unix timestamp; the trigger polls once more at the deadline, then times out.
    :param max_consecutive_errors: end with a (non-fatal) error event after this many transient errors
        in a row; None waits until the deadline.
    :param max_document_bytes: larger documents are replaced by an excerpt in the event.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        endpoint: str = "",
        method: str = "GET",
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        success_condition: Mapping[str, Any] | None = None,
        failure_condition: Mapping[str, Any] | None = None,
        pending_statuses: list[int] | None = None,
        response_filter: str | None = None,
        poll_interval: float = 60.0,
        backoff_factor: float = 1.0,
        max_poll_interval: float | None = None,
        deadline: float | None = None,
        max_consecutive_errors: int | None = None,
        max_document_bytes: int = 65_536,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0 or backoff_factor < 1.0:
            raise ValueError("poll_interval must be > 0 and backoff_factor >= 1.0")
        self.conn_id = conn_id
        self.endpoint = endpoint
        self.method = method.upper()
        self.params = dict(params) if params else None
        self.headers = dict(headers) if headers else None
        self.success_condition = success_condition
        self.failure_condition = failure_condition
        self.pending_statuses = sorted(set(pending_statuses or ()))
        self.response_filter = response_filter
        self.poll_interval = float(poll_interval)
        self.backoff_factor = float(backoff_factor)
        self.max_poll_interval = max_poll_interval
        self.deadline = deadline
        self.max_consecutive_errors = max_consecutive_errors
        self.max_document_bytes = max_document_bytes
        # Compiled here, so a bad condition fails the operator at DAG parse time, naming the field.
        self._rules = PollRules.build(
            success_condition, failure_condition, self.pending_statuses, response_filter
        )
        self._url: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "endpoint": self.endpoint,
                "method": self.method,
                "params": self.params,
                "headers": self.headers,
                "success_condition": self.success_condition,
                "failure_condition": self.failure_condition,
                "pending_statuses": self.pending_statuses,
                "response_filter": self.response_filter,
                "poll_interval": self.poll_interval,
                "backoff_factor": self.backoff_factor,
                "max_poll_interval": self.max_poll_interval,
                "deadline": self.deadline,
                "max_consecutive_errors": self.max_consecutive_errors,
                "max_document_bytes": self.max_document_bytes,
            },
        )

    async def poll_once(self, api: HttpClient) -> PollOutcome:
        """Send one status request and judge the answer; raises :class:`HttpError` for errors.

        The sensor's poke and reschedule modes call this; :meth:`run` inlines the same two steps.
        """
        # raise_for_status=False: a status is one poll, never the client's own retry loop; the poll
        # interval is the retry, and classify_status still decides what an error is.
        response = await api.request(
            self.method, self.endpoint, params=self.params, headers=self.headers, raise_for_status=False
        )
        if self._url is None:
            self._url = response.url  # redacted once: a property that re-parses the URL per access
        return self._rules.judge(response, api.config.retry.retry_on_statuses, self._url)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        tune_process_once()
        started = time.monotonic()
        url = f"{self.endpoint} (connection {self.conn_id!r})"
        try:
            # One lease for the trigger's whole life; no local keeps the hook alive once the config is
            # resolved (each waiting trigger's live objects are what a full garbage collection walks).
            async with IntegrationHttpHook(self.conn_id).client() as api:
                url = self._url = redact_url(api.url_for(self.endpoint).update_query(self.params or {}))
                payload = await self._loop(api, url)
        except (ConnectionConfigError, AirflowNotFoundException) as exc:
            # A missing or invalid connection: no poll can succeed until someone edits it.
            payload = event("error", url, reason=str(exc), error_type=type(exc).__name__, fatal=True)
        payload["elapsed"] = round(time.monotonic() - started, 3)
        # Yielded after the lease is returned, so a triggerer that cancels us right after the event
        # (or dag.test()'s asyncio.run) never finds a half-closed session.
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def _loop(self, api: HttpClient, url: str) -> PollEvent:
        # Flat on purpose (no poll_once() level): every coroutine level costs on each resume, and a
        # triggerer resumes ten thousand of these several times per poll.
        rules, retry_on = self._rules, api.config.retry.retry_on_statuses
        polls = errors = 0
        while True:
            polls += 1
            wait = poll_interval_for(polls, self.poll_interval, self.backoff_factor, self.max_poll_interval)
            try:
                response = await api.request(
                    self.method,
                    self.endpoint,
                    params=self.params,
                    headers=self.headers,
                    raise_for_status=False,
                )
                outcome = rules.judge(response, retry_on, url)
            except FatalError as exc:
                return error_event(exc, url, polls, fatal=True)
            except RetriableError as exc:
                errors += 1
                if self.max_consecutive_errors is not None and errors >= self.max_consecutive_errors:
                    return error_event(exc, url, polls, fatal=False)
                self.log.warning("Poll %d of %s failed: %s; polling again", polls, url, exc)
                wait = max(wait, exc.retry_after or 0.0)
            else:
                errors = 0
                if outcome.kind == "success":
                    self.log.debug("%s: success after %d polls", url, polls)
                    fields = bounded(outcome.document, self.max_document_bytes)
                    return event("success", url, polls=polls, http_status=outcome.http_status, **fields)
                if outcome.kind == "failure":
                    fields = bounded(outcome.document, self.max_document_bytes)
                    return event(
                        "failure",
                        url,
                        polls=polls,
                        http_status=outcome.http_status,
                        reason=outcome.reason,
                        **fields,
                    )
                wait = max(wait, outcome.retry_after or 0.0)
            if self.deadline is not None:
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    reason = f"no terminal answer after {polls} polls before the deadline"
                    return event("timeout", url, polls=polls, reason=reason)
                wait = min(wait, remaining)
            # Not kept alive across the sleep: ten thousand waiting triggers times seven objects that a
            # full garbage collection walks, and the collector's pauses are the triggerer's loop lag.
            response = outcome = None  # type: ignore[assignment]
            await asyncio.sleep(wait)
