"""``AsyncJobOperator``: submit a partner job once, wait for it, fetch its results page by page.

Submission happens in ``execute()`` on the worker, never in a trigger that may be restarted. Two things
make a retry reconnect to the job it already submitted instead of starting another:

- the job id is persisted in ``context["task_state_store"]`` (Airflow 3.3) right after the submit, in the
  spirit of ``ResumableJobMixin``; a retry reads it, asks the partner for the job's state, and waits for
  a running job again or takes the results of a finished one;
- the submit carries an idempotency key derived from dag_id / run_id / task_id / map_index and a
  *generation* kept in the same store. It closes the mixin's documented gap: a worker that dies between
  the submit and the persist resubmits the same key, and the partner answers the job it already has.
  The generation moves on only when the stored job failed, was cancelled, or succeeded in an earlier
  run of the task (a clear), so such a retry gets a fresh job rather than the old one replayed.

Without a task state store (older Airflow) the key alone protects the submit, with generation 0: a
partner that keeps keys then replays the first job to every later try of the task instance.
"""

from __future__ import annotations

import json as jsonlib
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.errors import FatalError, HttpError, NotFoundError
from airflow_provider_integrations.http.job_client import JobClient, JobResults
from airflow_provider_integrations.http.jobs import JobApi, JobEvent, JobOutcome
from airflow_provider_integrations.operators.http import idempotency_key_for
from airflow_provider_integrations.triggers.job_status import JobStatusTrigger

# The trigger polls once more at its end and that request may take the connection's total timeout;
# the scheduler's deferral timeout is only the backstop for a triggerer that is gone.
DEFERRAL_GRACE_SECONDS = 120.0


def _seconds(value: timedelta | float | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    return seconds


class AsyncJobOperator(BaseOperator):
    """Submit a job to a partner's async-job API, wait for it to end, and return its results.

    :param job_api: the API's shape (:class:`.JobApi` or a mapping with its fields), validated here.
    :param integration_http_conn_id: the ``integration_http`` connection.
    :param json: JSON body of the submit (templated).
    :param query: query parameters of the submit (templated).
    :param headers: extra headers of the submit (templated).
    :param idempotency_key: ``"auto"`` derives one from the task instance (see the module docstring);
        None sends none; another string is sent as is (with ``-<generation>`` after a failed job).
    :param poll_interval: seconds between status polls; a longer ``Retry-After`` wins.
    :param backoff_factor: growth of the interval per poll, capped by ``max_poll_interval``.
    :param wait_timeout: how long one try waits (seconds or timedelta; 7 days like a sensor's timeout,
        None: no limit). The job keeps running; the task fails and a retry reconnects to it.
    :param job_deadline: how long the job may run from its submission. Then it is cancelled at the
        partner and the task fails without retries. Kept across retries.
    :param max_consecutive_errors: end the wait (retriable failure) after this many transient errors.
    :param max_results: fail instead of reading more result items than this.
    :param max_xcom_bytes: fail instead of pushing a larger output to XCom.
    :param deferrable: wait in the triggerer (default from ``[operators] default_deferrable``); False
        polls on the worker with the same judging.
    """

    template_fields: Sequence[str] = ("json", "query", "headers", "idempotency_key")
    template_fields_renderers = {"json": "json", "query": "json", "headers": "json"}
    ui_color = "#ede9fe"
    #: Key of the persisted job record in ``task_state_store``.
    state_key = "async_job"

    def __init__(
        self,
        *,
        job_api: JobApi | Mapping[str, Any],
        integration_http_conn_id: str = IntegrationHttpHook.default_conn_name,
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = "auto",
        poll_interval: float = 30.0,
        backoff_factor: float = 1.0,
        max_poll_interval: float | None = None,
        wait_timeout: timedelta | float | None = timedelta(days=7),
        job_deadline: timedelta | float | None = None,
        max_consecutive_errors: int | None = None,
        max_results: int = 10_000,
        max_xcom_bytes: int = 1_048_576,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_api = JobApi.from_spec(job_api)  # a malformed spec fails the DAG import, naming the field
        self.integration_http_conn_id = integration_http_conn_id
        self.json, self.query, self.headers = json, query, headers
        self.idempotency_key = idempotency_key
        if poll_interval <= 0 or backoff_factor < 1.0:
            raise ValueError("poll_interval must be > 0 and backoff_factor >= 1.0")
        self.poll_interval = float(poll_interval)
        self.backoff_factor = float(backoff_factor)
        self.max_poll_interval = max_poll_interval
        self.wait_timeout = _seconds(wait_timeout, "wait_timeout")
        self.job_deadline = _seconds(job_deadline, "job_deadline")
        self.max_consecutive_errors = max_consecutive_errors
        self.max_results = max_results
        self.max_xcom_bytes = max_xcom_bytes
        self.deferrable = deferrable
        self._job_id: str | None = None

    # -- submit or reconnect ------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        store = context.get("task_state_store")
        record = _JobRecord.read(store, self.state_key)
        generation = 0
        if record is not None:
            generation = record.generation + 1
            if not record.done:
                outcome = self._call(self._state_of(record.job_id))
                if outcome is not None and outcome.kind == "running":
                    self.log.info(
                        "Reconnecting to job %s (state %r) submitted by an earlier try",
                        record.job_id,
                        outcome.state,
                    )
                    return self._wait(context, record.job_id, record.deadline)
                if outcome is not None and outcome.kind == "success":
                    self.log.info("Job %s, submitted by an earlier try, already succeeded", record.job_id)
                    return self._finish(context, record.job_id, outcome.state, polls=1)
                state = outcome.state if outcome is not None else "unknown to the partner"
                self.log.warning("Job %s of an earlier try is %r; submitting a new one", record.job_id, state)
        job_id = self._call(self._submit(self._key(context, generation)))
        deadline = time.time() + self.job_deadline if self.job_deadline is not None else None
        self.log.info("Submitted job %s (generation %d)", job_id, generation)
        if store is not None:
            store.set(self.state_key, _JobRecord(job_id, generation, deadline).as_json())
        return self._wait(context, job_id, deadline)

    def _key(self, context: Context, generation: int) -> str | None:
        if self.idempotency_key is None:
            return None
        base = idempotency_key_for(context) if self.idempotency_key == "auto" else self.idempotency_key
        return base if generation == 0 else f"{base}-{generation}"

    def _client(self) -> AbstractAsyncContextManager[HttpClient]:
        return IntegrationHttpHook(self.integration_http_conn_id).client()

    async def _submit(self, key: str | None) -> str:
        async with self._client() as api:
            return await JobClient(api, self.job_api).submit(
                json=self.json,
                params=dict(self.query) if self.query else None,
                headers=dict(self.headers) if self.headers else None,
                idempotency_key=key,
            )

    async def _state_of(self, job_id: str) -> JobOutcome | None:
        async with self._client() as api:
            try:
                return await JobClient(api, self.job_api).poll(job_id)
            except NotFoundError:
                return None  # the partner forgot the job (expired): submit a new one

    def _call(self, coro: Any) -> Any:
        try:
            return run_sync(coro)
        except (FatalError, ConnectionConfigError, AirflowNotFoundException) as exc:
            # Retrying cannot fix a 4xx, a broken contract or a bad connection: skip Airflow's retries.
            raise AirflowFailException(str(exc)) from None
        except HttpError as exc:
            raise AirflowException(f"{exc} (retries of the connection exhausted)") from None

    # -- wait ---------------------------------------------------------------------------------------

    def _wait(self, context: Context, job_id: str, deadline: float | None) -> Any:
        timeout_at = time.time() + self.wait_timeout if self.wait_timeout is not None else None
        trigger = JobStatusTrigger(
            conn_id=self.integration_http_conn_id,
            job_id=job_id,
            job_api=self.job_api,
            poll_interval=self.poll_interval,
            backoff_factor=self.backoff_factor,
            max_poll_interval=self.max_poll_interval,
            timeout_at=timeout_at,
            deadline=deadline,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        if self.deferrable:
            ends = [t for t in (timeout_at, deadline) if t is not None]
            backstop = min(ends) - time.time() + DEFERRAL_GRACE_SECONDS if ends else None
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=timedelta(seconds=backstop) if backstop is not None else None,
            )
        self._job_id = job_id  # on_kill cancels it while this worker waits
        try:
            event = self._call(trigger.wait())  # the trigger's own wait, run on this worker
        finally:
            self._job_id = None
        return self.execute_complete(context, event)

    def on_kill(self) -> None:
        job_id = self._job_id
        if job_id is None:
            return  # deferred: the trigger's on_kill cancels

        async def cancel() -> str:
            async with self._client() as api:
                return await JobClient(api, self.job_api).cancel_quietly(job_id)

        self.log.info("Task killed; cancel of job %s: %s", job_id, run_sync(cancel(), timeout=30))

    # -- resume -------------------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: JobEvent | None = None) -> Any:
        """Map the wait's event to the task's outcome; on success read the results."""
        if event is None:
            raise AirflowException("the job status trigger ended without an event")
        status, job_id = event["status"], event["job_id"]
        self.log.info("Job %s: %s after %d polls in %.1f s", job_id, status, event["polls"], event["elapsed"])
        if status == "success":
            return self._finish(
                context, job_id, event["state"], polls=event["polls"], document=event["document"]
            )
        where = f"job {job_id} ({event['url']})"
        if status == "failure":
            # Retriable: the next try finds the failed job in the task state store and submits anew.
            raise AirflowException(f"{where} failed: {event['reason']}{_excerpt(event)}")
        if status == "cancelled":
            raise AirflowFailException(f"{where} was cancelled at the partner: {event['reason']}")
        if status == "deadline":
            raise AirflowFailException(f"{where}: {event['reason']}")
        if status == "timeout":
            raise AirflowException(f"{where}: {event['reason']}; a retry reconnects to it")
        status_text = f"HTTP {event['http_status']} " if event["http_status"] else ""
        message = f"{where}: {status_text}{event['error_type']}: {event['reason']}"
        if event["fatal"]:
            raise AirflowFailException(message)
        raise AirflowException(f"{message} ({event['polls']} polls, transient errors persisted)")

    def _finish(self, context: Context, job_id: str, state: str, *, polls: int, document: Any = None) -> Any:
        if self.job_api.results_endpoint is None:
            output, results = document, None
        else:
            results = self._call(self._results(job_id))
            assert isinstance(results, JobResults)
            if not results.complete:
                raise AirflowFailException(
                    f"job {job_id} has more than max_results={self.max_results} result items: raise "
                    "max_results or read the results in a downstream task"
                )
            output = results.value
        size = len(jsonlib.dumps(output, default=str).encode())
        if self.do_xcom_push and size > self.max_xcom_bytes:
            raise AirflowFailException(
                f"the results of job {job_id} are {size} bytes, above max_xcom_bytes={self.max_xcom_bytes}: "
                "raise max_xcom_bytes, or set do_xcom_push=False"
            )
        summary = {
            "job_id": job_id,
            "state": state,
            "polls": polls,
            "result_items": results.items if results is not None else None,
            "result_pages": results.pages if results is not None else None,
        }
        context["ti"].xcom_push(key="job", value=summary)
        store = context.get("task_state_store")
        record = _JobRecord.read(store, self.state_key)
        if store is not None and record is not None and record.job_id == job_id:
            # A later clear of this task must submit a new job, not reconnect to this one.
            store.set(self.state_key, replace(record, done=True).as_json())
        return output

    async def _results(self, job_id: str) -> JobResults:
        async with self._client() as api:
            return await JobClient(api, self.job_api).results(job_id, max_items=self.max_results)


@dataclass(frozen=True)
class _JobRecord:
    """What the task state store keeps between tries: the job and the generation of its key."""

    job_id: str
    generation: int
    deadline: float | None
    done: bool = False

    @classmethod
    def read(cls, store: Any, key: str) -> _JobRecord | None:
        raw = store.get(key) if store is not None else None
        if not isinstance(raw, dict) or not isinstance(raw.get("job_id"), str):
            return None
        deadline = raw.get("deadline")
        return cls(
            job_id=raw["job_id"],
            generation=int(raw.get("generation") or 0),
            deadline=float(deadline) if isinstance(deadline, (int, float)) else None,
            done=bool(raw.get("done")),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "generation": self.generation,
            "deadline": self.deadline,
            "done": self.done,
        }


def _excerpt(event: JobEvent) -> str:
    if event["truncated"]:
        return f"; partner document (truncated): {event['excerpt']}"
    if event["document"] is None:
        return ""
    text = jsonlib.dumps(event["document"], default=str)
    return f"; partner document: {text if len(text) <= 1000 else text[:999] + '…'}"
