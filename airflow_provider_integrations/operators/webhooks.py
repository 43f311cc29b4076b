"""``WaitForCallbackOperator``: start external work that answers by calling a URL back, and wait for it.

Per task try, in ``execute()`` on the worker:

1. a callback is registered in the store: an unguessable id bound to dag_id, run_id, task_id, map_index
   and try number, expiring when the wait times out, naming the connection whose keys must sign it;
2. its URL (``[integrations] webhook_base_url`` + ``/callbacks/<id>``) goes to XCom (``callback_url``)
   and into the template context, so the templated request fields can carry ``{{ callback_url }}``;
3. optionally the request that starts the work is sent, once, through an ``integration_http``
   connection, with an idempotency key of the task try (each try has its own callback URL, so a retry
   must start work that calls *its* URL, not replay the previous try's job);
4. the task defers to :class:`WebhookCallbackTrigger` (or, with ``deferrable=False``, waits on the worker
   the same way) and resumes with the verified payload.

The id is chosen when the templates are rendered and kept in ``task_state_store`` for the try, so the
rendering after the resume shows the URL the partner was given.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final, cast

import jinja2
from airflow.sdk import BaseOperator, Context, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.hooks.webhooks import WebhookHook, load_settings
from airflow_provider_integrations.http.errors import FatalError, HttpError
from airflow_provider_integrations.operators.http import idempotency_key_for
from airflow_provider_integrations.triggers.webhooks import CallbackEvent, WebhookCallbackTrigger
from airflow_provider_integrations.webhooks import (
    CallbackRegistration,
    StoreUnavailableError,
    WebhookConfigError,
    WebhookError,
    new_callback_id,
)
from airflow_provider_integrations.webhooks.ids import is_callback_id

__all__ = ["WaitForCallbackOperator"]

# The scheduler's deferral timeout is only the backstop for a triggerer that is gone: the trigger ends
# the wait itself at the timeout, which also holds under dag.test().
DEFERRAL_GRACE_SECONDS: Final = 120.0
_STATE_KEY: Final = "webhook_callback"
# Registration field -> operator argument, for errors raised while checking the arguments.
_ARGUMENTS: Final = {"secret_name": "secret_conn_id", "schema": "payload_schema"}


class WaitForCallbackOperator(BaseOperator):
    """Register a callback URL, optionally start the partner's work with it, and wait for the callback.

    :param secret_conn_id: connection whose password holds the partner's signing keys (space-separated
        ``whsec_``/``whpk_``; old and new while rotating). The receiver verifies every request with them.
    :param wait_timeout: how long to wait (seconds or timedelta); the callback URL expires then too.
    :param payload_schema: JSON Schema the payload must satisfy; the receiver answers 400 otherwise.
    :param failure_condition: marks the partner's failure report, e.g.
        ``{"jmespath": "status", "equals": "failed"}``; such a payload fails the task (retries apply: a
        retry starts the work again with a new callback URL).
    :param failure_reason: JMESPath to the partner's reason in a failure payload.
    :param integration_http_conn_id: send the start request through this connection; None sends none.
    :param endpoint: path of the start request (templated).
    :param method: method of the start request.
    :param json: JSON body of the start request (templated; ``{{ callback_url }}`` is available).
    :param query: query parameters of the start request (templated).
    :param headers: extra headers of the start request (templated).
    :param idempotency_key: ``"auto"`` derives one per task try; None sends none; other strings as is.
    :param deferrable: wait in the triggerer (default from ``[operators] default_deferrable``).

    Returns the payload (XCom ``return_value``); pushes ``callback_url``, ``start_response`` (the
    start request's answer) and ``callback`` (``callback_id``, ``webhook_id``, ``received_at``).
    """

    template_fields: Sequence[str] = ("endpoint", "json", "query", "headers", "idempotency_key")
    template_fields_renderers = {"json": "json", "query": "json", "headers": "json"}
    ui_color = "#fef3c7"

    def __init__(
        self,
        *,
        secret_conn_id: str,
        wait_timeout: timedelta | float = timedelta(hours=24),
        payload_schema: Mapping[str, Any] | None = None,
        failure_condition: Mapping[str, Any] | None = None,
        failure_reason: str = "reason",
        integration_http_conn_id: str | None = None,
        endpoint: str = "",
        method: str = "POST",
        json: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = "auto",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        seconds = wait_timeout.total_seconds() if isinstance(wait_timeout, timedelta) else float(wait_timeout)
        if not seconds > 0:
            raise ValueError(f"wait_timeout must be > 0 seconds, got {wait_timeout!r}")
        self.secret_conn_id = secret_conn_id
        self.wait_timeout = seconds
        self.payload_schema = payload_schema
        self.failure_condition = failure_condition
        self.failure_reason = failure_reason
        self.integration_http_conn_id = integration_http_conn_id
        self.endpoint, self.method = endpoint, method
        self.json, self.query, self.headers = json, query, headers
        self.idempotency_key = idempotency_key
        self.deferrable = deferrable
        self._callback_id: str | None = None
        # Fail the DAG import, naming the argument, rather than the run.
        parse_check = {"dag_id": "parse", "run_id": "parse", "map_index": -1, "try_number": 1}
        self._registration(callback_id=new_callback_id(), expires_at=time.time() + seconds, **parse_check)
        self._trigger(new_callback_id(), time.time() + seconds)

    # -- the callback of this try --------------------------------------------------------------------

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Iterable[str],
        context: Context,
        jinja_env: jinja2.Environment,
        seen_oids: set[int],
    ) -> None:
        """Render with ``callback_url`` in the context (chosen once per try, see the module docstring).

        This hook, not ``render_template_fields``, is what both plain and mapped operators render through.
        """
        if parent is self and "callback_url" not in context:
            try:
                url = load_settings().callback_url(self._callback_for(context))
            except WebhookConfigError as exc:
                raise AirflowFailException(str(exc)) from None
            cast(dict[str, Any], context)["callback_url"] = url
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    def _callback_for(self, context: Context) -> str:
        if self._callback_id is not None:
            return self._callback_id
        ti, store = context["ti"], context.get("task_state_store")
        record = store.get(_STATE_KEY) if store is not None else None
        same_try = isinstance(record, dict) and record.get("try_number") == ti.try_number
        stored = record.get("callback_id") if same_try and isinstance(record, dict) else None
        if isinstance(stored, str) and is_callback_id(stored):
            callback_id = stored
        else:
            callback_id = new_callback_id()
            if store is not None:
                store.set(_STATE_KEY, {"callback_id": callback_id, "try_number": ti.try_number})
        self._callback_id = callback_id
        return callback_id

    def _registration(self, **binding: Any) -> CallbackRegistration:
        expires_at = datetime.fromtimestamp(binding.pop("expires_at"), timezone.utc)
        try:
            return CallbackRegistration(
                task_id=self.task_id,
                secret_name=self.secret_conn_id,
                schema=self.payload_schema,
                expires_at=expires_at,
                **binding,
            )
        except WebhookConfigError as exc:
            field = _ARGUMENTS.get(exc.field, exc.field)
            raise WebhookConfigError(field, exc.expected, value=exc.value) from None

    def _trigger(self, callback_id: str, timeout_at: float) -> WebhookCallbackTrigger:
        return WebhookCallbackTrigger(
            callback_id=callback_id,
            timeout_at=timeout_at,
            failure_condition=self.failure_condition,
            failure_reason=self.failure_reason,
        )

    # -- register, start, wait -----------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        ti = context["ti"]
        callback_id = self._callback_for(context)
        try:
            url = load_settings().callback_url(callback_id)
        except WebhookConfigError as exc:
            raise AirflowFailException(str(exc)) from None
        timeout_at = time.time() + self.wait_timeout
        registration = self._registration(
            callback_id=callback_id,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            map_index=ti.map_index if ti.map_index is not None else -1,
            try_number=ti.try_number,
            expires_at=timeout_at,
        )
        self._call(self._register(registration))
        self.log.info("Registered callback %s (expires %s)", url, registration.expires_at.isoformat())
        ti.xcom_push(key="callback_url", value=url)
        if self.integration_http_conn_id is not None:
            ti.xcom_push(key="start_response", value=self._call(self._start(self._key(context))))
        trigger = self._trigger(callback_id, timeout_at)
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=timedelta(seconds=self.wait_timeout + DEFERRAL_GRACE_SECONDS),
            )
        return self.execute_complete(context, self._call(trigger.wait()))

    async def _register(self, registration: CallbackRegistration) -> None:
        # Before the start request: the partner may call back before it has even answered.
        async with WebhookHook().store() as store:
            await store.register(registration)

    def _key(self, context: Context) -> str | None:
        if self.idempotency_key != "auto":
            return self.idempotency_key
        return f"{idempotency_key_for(context)}-{context['ti'].try_number}"

    async def _start(self, key: str | None) -> Any:
        assert self.integration_http_conn_id is not None
        response = await IntegrationHttpHook(self.integration_http_conn_id).arequest(
            self.method,
            self.endpoint,
            json=self.json,
            params=dict(self.query) if self.query else None,
            headers=dict(self.headers) if self.headers else None,
            idempotency_key=key,
        )
        self.log.info("%s %s -> %d in %s", response.method, response.url, response.status, response.timings)
        if not response.body:
            return None
        return response.json() if "json" in response.headers.get("Content-Type", "") else response.text

    def _call(self, coro: Any) -> Any:
        try:
            return run_sync(coro)
        except (StoreUnavailableError, HttpError) as exc:
            if isinstance(exc, FatalError):
                # Retrying cannot fix a 4xx or a broken contract: skip Airflow's retries.
                raise AirflowFailException(str(exc)) from None
            raise AirflowException(f"{exc} (retriable)") from None
        except (WebhookError, ConnectionConfigError, AirflowNotFoundException) as exc:
            raise AirflowFailException(str(exc)) from None

    # -- resume ----------------------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: CallbackEvent | None = None) -> Any:
        """Map the wait's event to the task's outcome; on success return the payload."""
        if event is None:
            raise AirflowException("the callback trigger ended without an event")
        status, callback_id = event["status"], event["callback_id"]
        self.log.info("Callback %s: %s after %.1f s", callback_id, status, event["waited"])
        if status == "success":
            summary = {k: event[k] for k in ("callback_id", "webhook_id", "received_at")}
            context["ti"].xcom_push(key="callback", value=summary)
            return event["payload"]
        if status == "failure":
            raise AirflowException(
                f"callback {callback_id}: the partner reported a failure: {event['reason']}"
            )
        if status == "timeout":
            raise AirflowException(
                f"callback {callback_id}: no callback within {self.wait_timeout:g} s; the URL has expired "
                "and a retry starts the work again with a new one"
            )
        raise AirflowFailException(f"callback {callback_id}: {event['error_type']}: {event['reason']}")
