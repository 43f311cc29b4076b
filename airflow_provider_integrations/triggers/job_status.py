"""``JobStatusTrigger``: wait in the triggerer for a partner job that ``AsyncJobOperator`` submitted.

The trigger never submits: the worker did that once, with an idempotency key, so a triggerer that is
killed and replaced (or two that briefly both run it) only repeats status reads. It ends with exactly one
:class:`~airflow_provider_integrations.http.jobs.JobEvent`:

- ``success`` / ``failure`` / ``cancelled``: the partner's terminal state;
- ``timeout``: the wait ended (``timeout_at``); the job keeps running and a retry reconnects to it;
- ``deadline``: the job itself ran too long (``deadline``), so it was cancelled at the partner first;
- ``error``: a fatal answer (401, 404, broken status document) or too many transient errors in a row.

``on_kill`` (Airflow 3.3) cancels the remote job when a user marks the deferred task failed or success,
or clears it: the work would otherwise go on at the partner, and be billed, for nobody.
``cleanup`` is not the place: it also runs when the triggerer merely shuts down or hands the trigger on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import HttpError
from airflow_provider_integrations.http.job_client import JobClient
from airflow_provider_integrations.http.jobs import JobApi, JobEvent, job_event
from airflow_provider_integrations.triggers._process import tune_process_once

__all__ = ["JobEvent", "JobStatusTrigger"]


class JobStatusTrigger(BaseTrigger):
    """Poll the status of partner job ``job_id`` until it ends.

    :param conn_id: the ``integration_http`` connection id.
    :param job_id: the partner's id of the submitted job.
    :param job_api: the job API spec (:class:`.JobApi` or its :meth:`~.JobApi.to_spec` mapping).
    :param poll_interval: seconds between status polls (a longer ``Retry-After`` wins).
    :param backoff_factor: growth of the interval per poll (1.0: constant).
    :param max_poll_interval: upper bound of the grown interval.
    :param timeout_at: Unix timestamp ending the wait (the job is left running).
    :param deadline: Unix timestamp after which the job is cancelled at the partner.
    :param max_consecutive_errors: end with a (non-fatal) error event after this many transient errors
        in a row; None waits until ``timeout_at`` or ``deadline``.
    :param max_document_bytes: a larger final status document is replaced by an excerpt in the event.
    """

    def __init__(
        self,
        *,
        conn_id: str,
        job_id: str,
        job_api: JobApi | Mapping[str, Any],
        poll_interval: float = 30.0,
        backoff_factor: float = 1.0,
        max_poll_interval: float | None = None,
        timeout_at: float | None = None,
        deadline: float | None = None,
        max_consecutive_errors: int | None = None,
        max_document_bytes: int = 65_536,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if poll_interval <= 0 or backoff_factor < 1.0:
            raise ValueError("poll_interval must be > 0 and backoff_factor >= 1.0")
        if not isinstance(job_id, str) or not job_id:
            raise ValueError(f"job_id must be a non-empty string, got {job_id!r}")
        self.conn_id = conn_id
        self.job_id = job_id
        self.job_api = JobApi.from_spec(job_api)
        self.poll_interval = float(poll_interval)
        self.backoff_factor = float(backoff_factor)
        self.max_poll_interval = max_poll_interval
        self.timeout_at = timeout_at
        self.deadline = deadline
        self.max_consecutive_errors = max_consecutive_errors
        self.max_document_bytes = max_document_bytes

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "job_id": self.job_id,
                "job_api": self.job_api.to_spec(),
                "poll_interval": self.poll_interval,
                "backoff_factor": self.backoff_factor,
                "max_poll_interval": self.max_poll_interval,
                "timeout_at": self.timeout_at,
                "deadline": self.deadline,
                "max_consecutive_errors": self.max_consecutive_errors,
                "max_document_bytes": self.max_document_bytes,
            },
        )

    async def wait(self) -> JobEvent:
        """Wait for the job with this trigger's settings; ``AsyncJobOperator`` calls it on the worker too."""
        async with IntegrationHttpHook(self.conn_id).client() as api:  # one lease for the whole wait
            return await JobClient(api, self.job_api).wait(
                self.job_id,
                poll_interval=self.poll_interval,
                backoff_factor=self.backoff_factor,
                max_poll_interval=self.max_poll_interval,
                timeout_at=self.timeout_at,
                deadline=self.deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                max_document_bytes=self.max_document_bytes,
            )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        tune_process_once()
        try:
            payload = await self.wait()
        except (ConnectionConfigError, AirflowNotFoundException) as exc:
            # A missing or invalid connection: no poll can succeed until someone edits it.
            where = f"{self.job_api.status_endpoint} (connection {self.conn_id!r})"
            payload = job_event(
                "error", self.job_id, where, reason=str(exc), error_type=type(exc).__name__, fatal=True
            )
        self.log.info("Job %s: %s (%s)", self.job_id, payload["status"], payload["reason"])
        # Yielded after the lease is returned, so a triggerer that cancels us right after the event
        # (or dag.test()'s asyncio.run) never finds a half-closed session.
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def on_kill(self) -> None:
        """Cancel the remote job: a user marked the deferred task failed or success, or cleared it."""
        try:
            async with IntegrationHttpHook(self.conn_id).client() as api:
                result = await JobClient(api, self.job_api).cancel(self.job_id)
        except (HttpError, ConnectionConfigError, AirflowNotFoundException) as exc:
            self.log.warning("The task was stopped by a user; cancelling job %s failed: %s", self.job_id, exc)
            return
        self.log.info("The task was stopped by a user; cancel of job %s: %s", self.job_id, result)
