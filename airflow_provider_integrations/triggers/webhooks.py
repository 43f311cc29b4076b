"""``WebhookCallbackTrigger``: wait in the triggerer for the callback ``WaitForCallbackOperator`` registered.

The trigger only reads the callback store; the receiver (API-server plugin or standalone service) wrote
the verified, schema-checked payload there. With the PostgreSQL store every waiting trigger of the
process hangs off one shared LISTEN connection and wakes on the NOTIFY of its callback; with SQLite one
poller per process checks all waiting ids at a short interval. A callback that came before the trigger
started (or while no triggerer ran) is already in the store and found by the first read. Running the
trigger twice (a triggerer restarted, or two briefly at once) is harmless: both read the same delivery.

It ends with exactly one :class:`CallbackEvent`:

- ``success``: the payload, and the partner's ``webhook-id``;
- ``failure``: the payload met ``failure_condition``; ``reason`` is what ``failure_reason`` selects;
- ``timeout``: nothing came by ``timeout_at`` (the callback URL expires at the same moment);
- ``error``: the wait cannot succeed (unknown callback, undecryptable payload, bad configuration).

A store that is briefly unreachable (database restart) is retried with backoff until ``timeout_at``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Literal, TypedDict

import jmespath
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.http.conditions import compile_condition, describe
from airflow_provider_integrations.postgres import PgError
from airflow_provider_integrations.triggers._process import tune_process_once
from airflow_provider_integrations.webhooks import (
    CallbackExpiredError,
    Delivery,
    StoreUnavailableError,
    WebhookError,
)

__all__ = ["CallbackEvent", "WebhookCallbackTrigger"]

_FIRST_RETRY: Final = 1.0
_MAX_RETRY: Final = 30.0
_MAX_REASON: Final = 1000


class CallbackEvent(TypedDict):
    status: Literal["success", "failure", "timeout", "error"]
    callback_id: str
    webhook_id: str | None
    payload: Any
    received_at: str | None
    reason: str
    error_type: str | None
    waited: float


class WebhookCallbackTrigger(BaseTrigger):
    """Wait for the delivery of callback ``callback_id``.

    :param callback_id: the registered callback (an id, not a credential: requests must be signed).
    :param timeout_at: Unix timestamp ending the wait.
    :param failure_condition: a condition (:mod:`~airflow_provider_integrations.http.conditions`) that
        marks a payload as the partner's failure report, e.g. ``{"jmespath": "status", "equals": "failed"}``.
    :param failure_reason: JMESPath to the partner's reason in a failure payload.
    """

    def __init__(
        self,
        *,
        callback_id: str,
        timeout_at: float,
        failure_condition: Mapping[str, Any] | None = None,
        failure_reason: str = "reason",
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if not isinstance(callback_id, str) or not callback_id:
            raise ValueError(f"callback_id must be a non-empty string, got {callback_id!r}")
        self.callback_id = callback_id
        self.timeout_at = float(timeout_at)
        self.failure_condition = dict(failure_condition) if failure_condition is not None else None
        self.failure_reason = failure_reason
        # Compiled once (and validated, naming the field) rather than per event.
        self._failed = (
            compile_condition(self.failure_condition, "failure_condition")
            if self.failure_condition is not None
            else None
        )
        self._reason = jmespath.compile(failure_reason)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "callback_id": self.callback_id,
                "timeout_at": self.timeout_at,
                "failure_condition": self.failure_condition,
                "failure_reason": self.failure_reason,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        tune_process_once()
        event = await self.wait()
        self.log.info(
            "Callback %s: %s after %.1f s %s",
            self.callback_id,
            event["status"],
            event["waited"],
            event["reason"],
        )
        # Yielded after the store lease is returned: a triggerer that cancels us right after the
        # event (or dag.test()'s asyncio.run) never finds a half-closed store.
        yield TriggerEvent(event)  # type: ignore[no-untyped-call]

    async def wait(self) -> CallbackEvent:
        """Wait with this trigger's settings; ``WaitForCallbackOperator`` calls it on the worker too."""
        started = time.monotonic()
        delay = _FIRST_RETRY
        while True:
            try:
                delivery = await self._wait_once()
            except CallbackExpiredError:
                delivery = None
            except (StoreUnavailableError, PgError) as exc:
                # Transient: the database restarts, a SQLite file is locked too long. Try again.
                if time.time() + delay >= self.timeout_at:
                    reason = f"callback store unavailable: {exc}"
                    return self._event("error", started, reason=reason, error_type=type(exc).__name__)
                self.log.warning("Callback store unavailable, retrying in %.0f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_RETRY)
                continue
            except (WebhookError, ConnectionConfigError, AirflowNotFoundException) as exc:
                # Unknown callback, undecryptable payload, bad settings: no retry of the wait can help.
                return self._event("error", started, reason=str(exc), error_type=type(exc).__name__)
            break
        if delivery is None:
            return self._event("timeout", started, reason="no callback arrived before the wait's timeout")
        return self.judge(delivery, time.monotonic() - started)

    async def _wait_once(self) -> Delivery | None:
        async with WebhookHook().store() as store:
            return await store.wait(self.callback_id, timeout=max(self.timeout_at - time.time(), 0.0))

    def judge(self, delivery: Delivery, waited: float) -> CallbackEvent:
        """``success``, or ``failure`` when the payload meets ``failure_condition`` (pure, no I/O)."""
        event: CallbackEvent = {
            "status": "success",
            "callback_id": self.callback_id,
            "webhook_id": delivery.webhook_id,
            "payload": delivery.payload,
            "received_at": delivery.received_at.isoformat(),
            "reason": "",
            "error_type": None,
            "waited": round(waited, 3),
        }
        if self._failed is not None and self.failure_condition is not None and self._failed(delivery.payload):
            found = self._reason.search(delivery.payload)
            reason = (
                str(found) if found not in (None, "") else f"payload met {describe(self.failure_condition)}"
            )
            event["status"] = "failure"
            event["reason"] = reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
        return event

    def _event(
        self,
        status: Literal["timeout", "error"],
        started: float,
        *,
        reason: str,
        error_type: str | None = None,
    ) -> CallbackEvent:
        return {
            "status": status,
            "callback_id": self.callback_id,
            "webhook_id": None,
            "payload": None,
            "received_at": None,
            "reason": reason,
            "error_type": error_type,
            "waited": round(time.monotonic() - started, 3),
        }
