"""PostgreSQL LISTEN/NOTIFY as a source, on the process's shared LISTEN connection (``postgres.listen``).

NOTIFY is fire-and-forget: notifications sent while nobody listens (before the subscription, during a
reconnect of the LISTEN connection) are gone, and a consumer more than ``max_buffered`` behind loses
the oldest (counted in :attr:`PgNotifySource.dropped`). Use it for low-latency wake-ups; for a
lossless, resumable feed tail a table (:class:`~.pg_tail.PgTableTail`, which NOTIFY can wake).

The position is ``None``, or a field of a JSON payload (``position_field``), read lazily; as nothing can
be replayed, ``open(from_position)`` only sets the position reported until the first notification.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.listen import Subscription, listener_for
from airflow_provider_integrations.streaming.base import StreamSource
from airflow_provider_integrations.streaming.errors import StreamConfigError
from airflow_provider_integrations.streaming.events import Event, JsonFields, Position, StreamOptions


class PgNotifySource(StreamSource):
    """Notifications of ``channel``; ``data`` is the payload (``str``), ``type`` the channel.

    :param position_field: a field of the JSON payload to report as the position (``None``: none).
    :param key_field: a field of the JSON payload to use as the key.
    """

    def __init__(
        self,
        config: PgConfig,
        channel: str,
        *,
        position_field: str | None = None,
        key_field: str | None = None,
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        if not isinstance(config, PgConfig):
            raise StreamConfigError("config", "a PgConfig", config)
        if not isinstance(channel, str) or not channel:
            raise StreamConfigError("channel", "a non-empty channel name", channel)
        super().__init__(name or f"{config.label}#{channel}", options)
        self.config = config
        self.channel = channel
        self.position_field = position_field
        self._fields = JsonFields(position_field, key_field) if position_field or key_field else None
        self._subscription: Subscription | None = None
        self._dropped_before = 0

    @property
    def dropped(self) -> int:
        """Notifications lost because the consumer fell ``max_buffered`` behind."""
        sub = self._subscription
        return self._dropped_before + (sub.dropped if sub is not None else 0)

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        # The listener reconnects by itself and keeps this subscription; it ends only with the listener.
        sub = await listener_for(self.config).subscribe(self.channel, maxsize=self.options.max_buffered)
        self._subscription = sub
        self._mark_ready()
        fields, channel, clock = self._fields, self.channel, time.time
        pos = fields.lazy_position if fields is not None else None
        key = fields.lazy_key if fields is not None else None
        try:
            async for first in sub:
                now = clock()
                yield [
                    Event(pos, channel, note.payload, now, key, fields)
                    for note in (first, *sub.drain_nowait())
                ]
            self._finished = True
        finally:
            self._dropped_before += sub.dropped
            self._subscription = None
            await sub.close()
