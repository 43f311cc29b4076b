"""``ApiPollSensor``: wait until an ``integration_http`` endpoint reports a terminal state.

Three modes, one judgement: deferrable (the default when ``[operators] default_deferrable`` is true)
hands the wait to :class:`.ApiPollTrigger`; ``mode="poke"`` and ``mode="reschedule"`` call the same
trigger's :meth:`~.ApiPollTrigger.poll_once` through the sync bridge, so a condition, a pending status
or a 403 means the same thing in every mode.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    AirflowSensorTimeout,
)

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import FatalError, RetriableError
from airflow_provider_integrations.http.polling import PollEvent, PollOutcome, poll_interval_for, polls_within
from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger

# The trigger polls once more at its deadline and that request may take the connection's total timeout;
# the scheduler's deferral timeout is only the backstop for a triggerer that is gone.
DEFERRAL_GRACE_SECONDS = 120.0


class ApiPollSensor(BaseSensorOperator):
    """Poll an endpoint until ``success_condition`` holds; fail fast when ``failure_condition`` holds.

    Conditions are data (:mod:`airflow_provider_integrations.http.conditions`), e.g.
    ``{"jmespath": "status", "equals": "done"}``, validated here at parse time.

    :param endpoint: path under the connection's base URL (templated).
    :param integration_http_conn_id: the ``integration_http`` connection.
    :param method: HTTP method of the status call.
    :param query: query parameters (templated).
    :param headers: extra headers (templated).
    :param success_condition: "done" (templated); None: any 2xx answer.
    :param failure_condition: "failed at the partner" (templated); fails the task without retries.
    :param pending_statuses: statuses meaning "not yet" (e.g. ``[404]``); any other 4xx fails at once.
    :param response_filter: JMESPath selecting what of the final document goes to XCom.
    :param backoff_factor: growth of ``poke_interval`` per poll, capped by ``max_wait`` (1.0: constant;
        ``exponential_backoff=True`` means 2.0).
    :param max_consecutive_errors: give up (retriable failure) after this many transient errors in a row.
    :param deferrable: wait in the triggerer (no worker slot held); default from
        ``[operators] default_deferrable``. ``mode`` applies only when False.
    :param max_xcom_bytes: fail instead of pushing a larger document to XCom.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "query",
        "headers",
        "success_condition",
        "failure_condition",
    )
    template_fields_renderers = {"query": "json", "headers": "json", "success_condition": "json"}
    ui_color = "#e0f2fe"

    def __init__(
        self,
        *,
        endpoint: str,
        integration_http_conn_id: str = IntegrationHttpHook.default_conn_name,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        success_condition: Mapping[str, Any] | None = None,
        failure_condition: Mapping[str, Any] | None = None,
        pending_statuses: Sequence[int] = (),
        response_filter: str | None = None,
        backoff_factor: float | None = None,
        max_consecutive_errors: int | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        max_xcom_bytes: int = 65_536,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.integration_http_conn_id = integration_http_conn_id
        self.method = method
        self.query = query
        self.headers = headers
        self.success_condition = success_condition
        self.failure_condition = failure_condition
        self.pending_statuses = list(pending_statuses)
        self.response_filter = response_filter
        self.backoff_factor = backoff_factor or (2.0 if self.exponential_backoff else 1.0)
        self.max_consecutive_errors = max_consecutive_errors
        self.deferrable = deferrable
        self.max_xcom_bytes = max_xcom_bytes
        self._errors = 0
        self._retry_after = 0.0
        if self.poke_interval <= 0:
            raise ValueError("poke_interval must be > 0: an API is never polled in a tight loop")
        self._trigger()  # validates conditions, filter and backoff now, at DAG parse time

    def _trigger(self, deadline: float | None = None) -> ApiPollTrigger:
        return ApiPollTrigger(
            conn_id=self.integration_http_conn_id,
            endpoint=self.endpoint,
            method=self.method,
            params=self.query,
            headers=self.headers,
            success_condition=self.success_condition,
            failure_condition=self.failure_condition,
            pending_statuses=self.pending_statuses,
            response_filter=self.response_filter,
            poll_interval=self.poke_interval,
            backoff_factor=self.backoff_factor,
            max_poll_interval=self.max_wait.total_seconds() if self.max_wait else None,
            deadline=deadline,
            max_consecutive_errors=self.max_consecutive_errors,
            max_document_bytes=self.max_xcom_bytes,
        )

    # -- deferrable --------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        # Rebuilt after templating, so a templated condition is validated once more as rendered.
        trigger = self._trigger(deadline=time.time() + self.timeout)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def execute_complete(self, context: Context, event: PollEvent | None = None) -> Any:
        """Map the trigger's event to the task's outcome (soft_fail is applied by the base class)."""
        if event is None:
            raise AirflowException("the polling trigger ended without an event")
        status = event["status"]
        self.log.info(
            "%s: %s after %d polls in %.1f s", event["url"], status, event["polls"], event["elapsed"]
        )
        if status == "success":
            return self._xcom(event)
        if status == "failure":
            raise AirflowFailException(
                f"{event['url']}: failure condition met: {event['reason']}{_excerpt(event)}"
            )
        if status == "timeout":
            raise AirflowSensorTimeout(f"{event['url']}: {event['reason']} (timeout {self.timeout:.0f} s)")
        where = (
            f"{event['url']}: HTTP {event['http_status']} " if event["http_status"] else f"{event['url']}: "
        )
        message = f"{where}{event['error_type']}: {event['reason']}"
        if event["fatal"]:
            raise AirflowFailException(message)
        raise AirflowException(f"{message} ({event['polls']} polls, transient errors persisted)")

    def _xcom(self, event: PollEvent) -> Any:
        if event["truncated"] and self.do_xcom_push:
            raise AirflowFailException(
                f"the final document is {event['document_bytes']} bytes, above max_xcom_bytes="
                f"{self.max_xcom_bytes}: select fields with response_filter, raise max_xcom_bytes, or set "
                "do_xcom_push=False"
            )
        return event["document"]

    # -- poke and reschedule -----------------------------------------------------------------------

    def poke(self, context: Context) -> bool | PokeReturnValue:
        trigger = self._trigger()
        hook = IntegrationHttpHook(self.integration_http_conn_id)

        async def once() -> PollOutcome:
            async with hook.client() as api:
                return await trigger.poll_once(api)

        self._retry_after = 0.0
        try:
            outcome = run_sync(once())
        except (FatalError, ConnectionConfigError, AirflowNotFoundException) as exc:
            raise AirflowFailException(str(exc)) from None
        except RetriableError as exc:
            self._errors += 1
            if self.max_consecutive_errors is not None and self._errors >= self.max_consecutive_errors:
                raise AirflowException(f"{exc} ({self._errors} transient errors in a row)") from None
            self.log.warning("Poll failed: %s; polling again", exc)
            self._retry_after = exc.retry_after or 0.0
            return False
        self._errors = 0
        if outcome.kind == "failure":
            raise AirflowFailException(f"{outcome.url}: failure condition met: {outcome.reason}")
        if outcome.kind == "pending":
            self._retry_after = outcome.retry_after or 0.0
            self.log.info("%s: not yet (HTTP %d)", outcome.url, outcome.http_status)
            return False
        size = len(jsonlib.dumps(outcome.document, default=str).encode())
        if self.do_xcom_push and size > self.max_xcom_bytes:
            raise AirflowFailException(
                f"the final document is {size} bytes, above max_xcom_bytes={self.max_xcom_bytes}: select "
                "fields with response_filter, raise max_xcom_bytes, or set do_xcom_push=False"
            )
        return PokeReturnValue(is_done=True, xcom_value=outcome.document)

    def _get_next_poke_interval(
        self, started_at: Any, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        # Same schedule as the trigger in all modes (the base class has its own hashed-jitter formula).
        cap = self.max_wait.total_seconds() if self.max_wait else None
        elapsed = float(run_duration())
        if self.reschedule:
            # Each reschedule is a fresh execute(): recover the poll number from the time waited so far.
            poke_count = polls_within(elapsed, self.poke_interval, self.backoff_factor, cap)
        wait = poll_interval_for(poke_count, self.poke_interval, self.backoff_factor, cap)
        wait = max(wait, self._retry_after)
        return max(0.0, min(wait, float(self.timeout) - elapsed))


def _excerpt(event: PollEvent) -> str:
    if event["truncated"]:
        return f"; partner document (truncated): {event['excerpt']}"
    if event["document"] is None:
        return ""
    text = jsonlib.dumps(event["document"], default=str)
    return f"; partner document: {text if len(text) <= 1000 else text[:999] + '…'}"
