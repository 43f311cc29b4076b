"""The callback store contract shared by the SQLite and PostgreSQL stores.

A callback is one-shot. :meth:`CallbackStore.deliver` stores the *first* delivery and answers
``accepted`` only once it is committed (a 202 means durable). Every later delivery to the same callback
is answered ``duplicate`` and changes nothing: a retry of the same ``webhook-id``, and equally a distinct
message arriving after the first (a partner that calls twice): the waiter always gets the first payload.
Deliveries to a callback that was never registered (or was cleaned up) are ``unknown``; deliveries after
``expires_at`` to a callback that holds nothing are ``expired``.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any, Final, TypeVar

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.ids import CallbackRegistration
from airflow_provider_integrations.webhooks.store.waiting import WaitFeed, wait_for_delivery

__all__ = [
    "DEFAULT_KEEP_DELIVERED",
    "CallbackState",
    "CallbackStore",
    "Delivery",
    "DeliveryOutcome",
    "StoreBase",
]

#: How long :meth:`CallbackStore.cleanup_expired` keeps a delivered payload after the callback expired,
#: so a task whose triggerer was down when the callback came still finds it.
DEFAULT_KEEP_DELIVERED: Final = timedelta(days=1)


class DeliveryOutcome(str, enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The accepted payload of a callback (parsed JSON)."""

    callback_id: str
    webhook_id: str
    payload: Any
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CallbackState:
    expires_at: datetime
    delivery: Delivery | None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


_S = TypeVar("_S", bound="StoreBase")


class StoreBase(ABC):
    """What the callback store and the event log share: the payload codec and the lifecycle.

    ``async with store:`` opens it (creating its tables if needed) and closes it. ``codec`` encrypts
    payloads at rest (see :class:`~airflow_provider_integrations.webhooks.crypto.PayloadCodec`).
    """

    def __init__(self, codec: PayloadCodec | None = None) -> None:
        self.codec = codec or PayloadCodec()

    async def __aenter__(self: _S) -> _S:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the tables if they do not exist (idempotent, safe from many processes)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the database answers (health checks)."""

    @abstractmethod
    def _feed(self) -> WaitFeed:
        """What wakes waiters: notifications (PostgreSQL) or a shared poller (SQLite)."""


class CallbackStore(StoreBase):
    """Where registrations and their deliveries live; use one instance per process and event loop."""

    @abstractmethod
    async def register(self, registration: CallbackRegistration) -> None:
        """Store ``registration``. Registering the same record again is a no-op; a different record
        under the same id raises :class:`CallbackConflictError`."""

    @abstractmethod
    async def get(self, callback_id: str) -> CallbackRegistration | None:
        """The registration, expired or not; ``None`` if unknown."""

    async def deliver(
        self, callback_id: str, webhook_id: str, payload: bytes, *, now: datetime | None = None
    ) -> DeliveryOutcome:
        """Store ``payload`` (the raw JSON body) as the callback's delivery; see the module docstring.

        ``accepted`` is returned only after the commit; a waiter is then woken.
        """
        blob = self.codec.encode(callback_id, payload)
        return await self._deliver(callback_id, webhook_id, blob, now or utcnow())

    async def cleanup_expired(
        self, now: datetime | None = None, *, keep_delivered: timedelta = DEFAULT_KEEP_DELIVERED
    ) -> int:
        """Delete callbacks expired at ``now`` (delivered ones ``keep_delivered`` later); return how many."""
        return await self._cleanup(now or utcnow(), keep_delivered)

    @abstractmethod
    async def _deliver(self, callback_id: str, webhook_id: str, blob: bytes, at: datetime) -> DeliveryOutcome:
        """Store the encrypted ``blob``, delivered ``at``; answer only once it is committed."""

    @abstractmethod
    async def _cleanup(self, now: datetime, keep_delivered: timedelta) -> int: ...

    @abstractmethod
    async def _state(self, callback_id: str) -> CallbackState | None:
        """Expiry and delivery of one callback, payload decoded."""

    async def delivery(self, callback_id: str) -> Delivery | None:
        """The delivery if one was accepted, without waiting."""
        state = await self._state(callback_id)
        return None if state is None else state.delivery

    async def wait(self, callback_id: str, timeout: float | None) -> Delivery | None:
        """Return the delivery as soon as it is stored (at once if it already is).

        ``None`` when ``timeout`` seconds pass first (``None``: no limit but the callback's expiry).
        Raises :class:`CallbackNotFoundError` for an unknown id and :class:`CallbackExpiredError` when
        the callback expires with nothing delivered.
        """
        return await wait_for_delivery(self._feed(), self._state, callback_id, timeout)

    def _decode(self, callback_id: str, webhook_id: str, blob: bytes, received_at: datetime) -> Delivery:
        payload = json.loads(self.codec.decode(callback_id, blob))
        return Delivery(callback_id, webhook_id, payload, received_at)
