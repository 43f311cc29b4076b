"""``SqlConditionSensor``: wait until a PostgreSQL query's result meets a condition given as data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.errors import PgError, PgRetriableError
from airflow_provider_integrations.triggers.sql import (
    MAX_CONSECUTIVE_ERRORS,
    ConditionError,
    ProbeResult,
    SqlConditionTrigger,
    check_condition,
    probe,
)


class SqlConditionSensor(BaseSensorOperator):
    """Probe ``sql`` until ``success`` holds; fail at once when ``failure`` holds.

    Deferrable by default: the probes then run in the triggerer on asyncpg without holding a worker
    slot, and ``mode`` does not matter. With ``deferrable=False``, ``poke`` and ``reschedule`` modes run
    the same probe on the worker. The value of the first column of the first row goes to XCom.

    :param postgres_conn_id: a connection of the standard ``postgres`` type.
    :param sql: the probe query (templated); ``$1``-style placeholders.
    :param parameters: values for the placeholders (templated), JSON primitives.
    :param success: condition that ends the wait, e.g. ``{"op": ">=", "value": 1}`` on the first
        column of the first row, or ``{"op": "any_row"}`` (the default). See ``triggers.sql`` for all.
    :param failure: condition that fails the task without retries, e.g. ``{"op": "==", "value": "error"}``.
    :param pool_options: pool settings overriding the connection's extras (see ``AsyncPostgresHook``).
    :param deferrable: wait in the triggerer (``[operators] default_deferrable``, default true).
    """

    template_fields: Sequence[str] = ("sql", "parameters")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}
    ui_color = "#e0f2fe"

    def __init__(
        self,
        *,
        sql: str,
        postgres_conn_id: str = AsyncPostgresHook.default_conn_name,
        parameters: Sequence[Any] | None = None,
        success: Mapping[str, Any] | None = None,
        failure: Mapping[str, Any] | None = None,
        pool_options: Mapping[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.sql = sql
        self.parameters = list(parameters or [])
        check_condition(success, "success")
        check_condition(failure, "failure")
        self.success = dict(success or {"op": "any_row"})
        self.failure = dict(failure) if failure is not None else None
        self.pool_options = dict(pool_options or {})
        self.deferrable = deferrable
        self._errors = 0

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=SqlConditionTrigger(
                postgres_conn_id=self.postgres_conn_id,
                sql=self.sql,
                parameters=self.parameters,
                success=self.success,
                failure=self.failure,
                poke_interval=self.poke_interval,
                pool_options=self.pool_options,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> Any:
        if event is None:
            raise AirflowException("the trigger ended without an event")
        status = event.get("status")
        if status == "success":
            self.log.info("%s (value %r)", event.get("message"), event.get("value"))
            return event.get("value")
        if status == "failure":
            raise AirflowFailException(self._failure_message(event.get("value"), event.get("rows", 0)))
        message = f"probe query failed: {event.get('error_type')}: {event.get('message')}"
        if event.get("retriable"):
            raise AirflowException(message)  # the database may be back for Airflow's next try
        raise AirflowFailException(message)

    def poke(self, context: Context) -> bool | PokeReturnValue:
        hook = AsyncPostgresHook(self.postgres_conn_id, pool_options=self.pool_options)
        try:
            result = run_sync(self._probe(hook))
        except PgRetriableError as exc:
            self._errors += 1
            if self._errors >= MAX_CONSECUTIVE_ERRORS:
                raise AirflowException(f"probe query failed {self._errors} times in a row: {exc}") from None
            self.log.warning("Probe failed (%s); trying again at the next poke", exc)
            return False
        except (PgError, ConnectionConfigError, ConditionError) as exc:
            raise AirflowFailException(f"probe query failed: {type(exc).__name__}: {exc}") from None
        self._errors = 0
        if result.status == "failure":
            raise AirflowFailException(self._failure_message(result.value, result.rows))
        self.log.info("Probe: %d row(s), value %r: %s", result.rows, result.value, result.status)
        return PokeReturnValue(is_done=result.status == "success", xcom_value=result.value)

    async def _probe(self, hook: AsyncPostgresHook) -> ProbeResult:
        async with hook.pool() as pool:
            return await probe(pool, self.sql, self.parameters, self.success, self.failure)

    def _failure_message(self, value: Any, rows: int) -> str:
        return f"failure condition {self.failure} met: {rows} row(s), value {value!r}"
