"""``SqlConditionTrigger``: probe a PostgreSQL query until a condition on its result holds.

Conditions are data, so they serialize with the trigger and read the same in the UI:

- ``{"op": "any_row"}`` / ``{"op": "no_rows"}``: the query returned at least one row / none;
- ``{"op": OP, "value": V}`` with OP one of ``== != > >= < <=``, ``{"op": "in", "value": [..]}``,
  ``{"op": "not_in", ...}``, ``{"op": "is_null"}``, ``{"op": "not_null"}``: applied to the first
  column (or ``"column": name_or_index``) of the first row; with no row, these are false.

The probe runs on the process's shared asyncpg pool of the connection, so thousands of deferred sensors
on one connection hold a handful of database connections, never one each.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import operator
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.errors import PgError, PgRetriableError
from airflow_provider_integrations.postgres.pool import PgPool, acquire_pool, release_pool
from airflow_provider_integrations.triggers._process import tune_process_once

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_ROWS = ("any_row", "no_rows")
_NULLS = ("is_null", "not_null")
_SETS = ("in", "not_in")
OPS = (*_COMPARE, *_SETS, *_NULLS, *_ROWS)
#: Consecutive transient errors (lost connection, server restarting) tolerated before giving up.
MAX_CONSECUTIVE_ERRORS = 5

Status = Literal["success", "failure", "pending"]


class SqlConditionEvent(TypedDict):
    """What the trigger yields and ``SqlConditionSensor.execute_complete`` reads."""

    status: Literal["success", "failure", "error"]
    value: Any  # first column of the first row, JSON-safe
    rows: int
    probes: int
    message: str
    error_type: str | None
    sqlstate: str | None
    retriable: bool


class ConditionError(ValueError):
    """A condition is malformed, or cannot be applied to the value the query returned."""


def check_condition(condition: Mapping[str, Any] | None, name: str) -> None:
    """Validate a condition at DAG parse time, not when the first probe runs."""
    if condition is None:
        return
    if not isinstance(condition, Mapping) or condition.get("op") not in OPS:
        raise ConditionError(f"{name}: expected {{'op': one of {list(OPS)}, ...}}, got {condition!r}")
    op = condition["op"]
    needs_value = op in _COMPARE or op in _SETS
    if needs_value != ("value" in condition):
        raise ConditionError(f"{name}: op {op!r} {'needs' if needs_value else 'takes no'} 'value'")
    if op in _SETS and not isinstance(condition["value"], (list, tuple)):
        raise ConditionError(f"{name}: op {op!r} needs a list 'value', got {condition['value']!r}")
    unknown = set(condition) - {"op", "value", "column"}
    if unknown:
        raise ConditionError(f"{name}: unknown keys {sorted(unknown)}; known: op, value, column")


def _first(rows: Sequence[Any], column: int | str) -> Any:
    if not rows:
        return None
    try:
        return rows[0][column]
    except (IndexError, KeyError):
        raise ConditionError(f"column {column!r} is not in the query's result") from None


def _coerce(expected: Any, observed: Any) -> Any:
    # JSON has no timestamps: compare an ISO string against a date/timestamp column as one.
    if isinstance(expected, str) and isinstance(observed, (dt.date, dt.datetime)):
        return type(observed).fromisoformat(expected)
    return expected


def matches(condition: Mapping[str, Any], rows: Sequence[Any]) -> bool:
    op: str = condition["op"]
    if op in _ROWS:
        return bool(rows) == (op == "any_row")
    if not rows:
        return False
    value = _first(rows, condition.get("column", 0))
    if op in _NULLS:
        return (value is None) == (op == "is_null")
    if value is None:
        return False  # SQL semantics: NULL compares to nothing
    try:
        if op in _SETS:
            found = value in [_coerce(v, value) for v in condition["value"]]
            return found == (op == "in")
        return _COMPARE[op](value, _coerce(condition["value"], value))
    except (TypeError, ValueError) as exc:
        raise ConditionError(f"cannot apply {condition!r} to {value!r}: {exc}") from None


def jsonable(value: Any) -> Any:
    """A value fit for an event, XCom and the log: Decimal, timestamps and the like become plain types."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: Status
    value: Any
    rows: int


async def probe(
    pool: PgPool,
    sql: str,
    parameters: Sequence[Any],
    success: Mapping[str, Any],
    failure: Mapping[str, Any] | None,
) -> ProbeResult:
    """Run the query once and decide; the failure condition wins when both hold."""
    rows = await pool.fetch(sql, *parameters)
    if failure is not None and matches(failure, rows):
        return ProbeResult("failure", jsonable(_first(rows, failure.get("column", 0))), len(rows))
    status: Status = "success" if matches(success, rows) else "pending"
    return ProbeResult(status, jsonable(_first(rows, success.get("column", 0))), len(rows))


def error_event(exc: Exception, probes: int) -> SqlConditionEvent:
    return SqlConditionEvent(
        status="error",
        value=None,
        rows=0,
        probes=probes,
        message=str(exc),
        error_type=type(exc).__name__,
        sqlstate=getattr(exc, "sqlstate", None),
        retriable=isinstance(exc, PgRetriableError),
    )


class SqlConditionTrigger(BaseTrigger):
    """Run ``sql`` every ``poke_interval`` seconds until ``success`` or ``failure`` holds.

    Holds only primitives; the connection (and its password) is looked up by id in the triggerer.
    Yields exactly one :class:`SqlConditionEvent`.
    """

    def __init__(
        self,
        postgres_conn_id: str,
        sql: str,
        parameters: Sequence[Any] | None = None,
        success: Mapping[str, Any] | None = None,
        failure: Mapping[str, Any] | None = None,
        poke_interval: float = 60.0,
        pool_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        check_condition(success, "success")
        check_condition(failure, "failure")
        self.postgres_conn_id = postgres_conn_id
        self.sql = sql
        self.parameters = list(parameters or [])
        self.success = dict(success or {"op": "any_row"})
        self.failure = dict(failure) if failure is not None else None
        self.poke_interval = float(poke_interval)
        self.pool_options = dict(pool_options or {})
        self._pool: PgPool | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "postgres_conn_id": self.postgres_conn_id,
                "sql": self.sql,
                "parameters": self.parameters,
                "success": self.success,
                "failure": self.failure,
                "poke_interval": self.poke_interval,
                "pool_options": self.pool_options,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The final event is built with the lease held and yielded after releasing it, so a suspended
        # generator (dag.test() reads one event and walks away) never pins a pool.
        tune_process_once()
        event = await self._poll()
        yield TriggerEvent(dict(event))  # type: ignore[no-untyped-call]

    async def _poll(self) -> SqlConditionEvent:
        hook = AsyncPostgresHook(self.postgres_conn_id, pool_options=self.pool_options)
        probes = errors = 0
        try:
            self._pool = acquire_pool(await hook.aget_config())
            while True:
                probes += 1
                try:
                    result = await probe(self._pool, self.sql, self.parameters, self.success, self.failure)
                except PgRetriableError as exc:
                    errors += 1
                    if errors >= MAX_CONSECUTIVE_ERRORS:
                        return error_event(exc, probes)
                    self.log.warning("Probe %d failed (%s); retrying in %gs", probes, exc, self.poke_interval)
                else:
                    errors = 0
                    if result.status != "pending":
                        message = f"{result.status} condition met after {probes} probe(s)"
                        return SqlConditionEvent(
                            status=result.status,
                            value=result.value,
                            rows=result.rows,
                            probes=probes,
                            message=message,
                            error_type=None,
                            sqlstate=None,
                            retriable=False,
                        )
                    self.log.info("Probe %d: %d row(s), value %r: not yet", probes, result.rows, result.value)
                await asyncio.sleep(self.poke_interval)
        except (PgError, ConnectionConfigError, ConditionError) as exc:
            return error_event(exc, probes)
        finally:
            await self.cleanup()

    async def cleanup(self) -> None:
        """Return the pool lease (idempotent: ``run`` returns it too, and ``dag.test()`` skips this)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await release_pool(pool)
