"""The PostgreSQL callback store: many receivers and triggerers share one database.

Built on the package's asyncpg layer: the process-wide pool of the :class:`PgConfig` and its one shared
LISTEN connection. An accepted delivery sends ``NOTIFY`` (payload: the callback id) in the same
statement as its ``UPDATE``, so the notification leaves only when the delivery is committed. Every
waiting caller of a process, however many, hangs off one subscription of that LISTEN connection.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.postgres.ident import qualified
from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import CallbackConflictError
from airflow_provider_integrations.webhooks.ids import CallbackRegistration
from airflow_provider_integrations.webhooks.store._pg_base import PgStoreBase, channel_name
from airflow_provider_integrations.webhooks.store.base import CallbackState, CallbackStore, DeliveryOutcome
from airflow_provider_integrations.webhooks.store.records import registration_from_row, same_binding

__all__ = ["PostgresCallbackStore"]

_COLUMNS: Final = (
    "callback_id, dag_id, run_id, task_id, map_index, try_number, secret_name, schema_json, created_at, "
    "expires_at"
)
# callback id, webhook id, stored blob, delivery time
_Pending = tuple[str, str, bytes, datetime]


class PostgresCallbackStore(PgStoreBase, CallbackStore):
    """:param config: the database (its pool and LISTEN connection are shared process-wide).
    :param schema: an existing schema to keep the table in. :param table: the table name."""

    _label = "postgres callback store"
    _variable = "store"

    def __init__(
        self,
        config: PgConfig,
        *,
        schema: str = "public",
        table: str = "webhook_callbacks",
        codec: PayloadCodec | None = None,
    ) -> None:
        super().__init__(
            config,
            schema=schema,
            channel=channel_name(schema, table),
            tables=f"{schema}.{table}",
            statements=_statements(qualified(table, schema)),
            codec=codec,
        )
        self.table = table
        self._batcher = self._batched(self._deliver_batch)
        self._reads = self._batched(self._get_batch)

    def __repr__(self) -> str:
        return f"<PostgresCallbackStore {self.config.dsn} {self.schema}.{self.table}>"

    async def register(self, registration: CallbackRegistration) -> None:
        r = registration
        with self._errors(f"registering {r.callback_id}"):
            status = await self.pool.execute(
                self._sql["insert"],
                r.callback_id, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.secret_name,
                r.schema_json, r.created_at, r.expires_at,
            )  # fmt: skip
            if status.endswith(" 1"):
                return
        existing = await self.get(r.callback_id)
        if existing is None or not same_binding(existing, r):
            raise CallbackConflictError(f"callback id {r.callback_id} is already registered differently")

    async def get(self, callback_id: str) -> CallbackRegistration | None:
        return await self._reads.submit(callback_id)

    async def _get_batch(self, ids: list[str]) -> list[CallbackRegistration | None]:
        # A receiver under load looks up many callbacks at once: one query serves them all.
        with self._errors(f"reading {len(ids)} callbacks"):
            rows = await self.pool.fetch(self._sql["get"], ids)
        found = {row[0]: registration_from_row(*row) for row in rows}
        return [found.get(callback_id) for callback_id in ids]

    async def _deliver(self, callback_id: str, webhook_id: str, blob: bytes, at: datetime) -> DeliveryOutcome:
        return await self._batcher.submit((callback_id, webhook_id, blob, at))

    async def _deliver_batch(self, batch: list[_Pending]) -> list[DeliveryOutcome]:
        """Every delivery of the batch in one statement: one commit, one NOTIFY for the accepted ones."""
        ids, webhook_ids, blobs, times = (list(column) for column in zip(*batch, strict=True))
        with self._errors(f"delivering {len(batch)} callbacks"):
            rows = await self.pool.fetch(self._sql["deliver"], ids, webhook_ids, blobs, times, self.channel)
        return [_outcome(*row) for row in rows]

    async def _cleanup(self, now: datetime, keep_delivered: timedelta) -> int:
        with self._errors("cleaning up expired callbacks"):
            status = await self.pool.execute(self._sql["cleanup"], now, keep_delivered)
        return int(status.rsplit(" ", 1)[1])

    async def _state(self, callback_id: str) -> CallbackState | None:
        with self._errors(f"reading {callback_id}"):
            row = await self.pool.fetchrow(self._sql["state"], callback_id)
        if row is None:
            return None
        expires_at, webhook_id, blob, delivered_at = row
        delivery = None if webhook_id is None else self._decode(callback_id, webhook_id, blob, delivered_at)
        return CallbackState(expires_at, delivery)


def _outcome(accepted: bool, found: bool, delivered: bool, live: bool, _notified: int) -> DeliveryOutcome:
    if accepted:
        return DeliveryOutcome.ACCEPTED
    if not found:
        return DeliveryOutcome.UNKNOWN
    if delivered:
        return DeliveryOutcome.DUPLICATE
    # Undelivered in the statement's snapshot yet not updated: a concurrent delivery won the row.
    return DeliveryOutcome.DUPLICATE if live else DeliveryOutcome.EXPIRED


def _statements(t: str) -> dict[str, str]:
    return {
        "ddl": f"""
            CREATE TABLE IF NOT EXISTS {t} (
                callback_id text PRIMARY KEY,
                dag_id text NOT NULL,
                run_id text NOT NULL,
                task_id text NOT NULL,
                map_index integer NOT NULL,
                try_number integer NOT NULL,
                secret_name text NOT NULL,
                schema_json text,
                created_at timestamptz NOT NULL,
                expires_at timestamptz NOT NULL,
                webhook_id text,
                payload bytea,
                delivered_at timestamptz
            )""",
        "insert": f"INSERT INTO {t} ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
        "ON CONFLICT (callback_id) DO NOTHING",
        "get": f"SELECT {_COLUMNS} FROM {t} WHERE callback_id = ANY($1::text[])",
        # A batch in one round trip. Rows are locked in id order (concurrent batches touching the same
        # callbacks cannot deadlock); of two deliveries to one callback in a batch the earlier wins.
        # The final SELECT reads the snapshot from before the UPDATE, which tells why a row was not
        # updated. NOTIFY is sent at commit, so a woken waiter always finds the row.
        "deliver": f"""
            WITH input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])
                    WITH ORDINALITY AS i(callback_id, webhook_id, payload, at, n)
            ), first AS (
                SELECT DISTINCT ON (callback_id) * FROM input ORDER BY callback_id, n
            ), locked AS (
                SELECT c.callback_id FROM {t} AS c JOIN first AS f USING (callback_id)
                ORDER BY c.callback_id FOR UPDATE OF c
            ), upd AS (
                UPDATE {t} AS c SET webhook_id = f.webhook_id, payload = f.payload, delivered_at = f.at
                FROM first AS f JOIN locked AS l USING (callback_id)
                WHERE c.callback_id = f.callback_id AND c.webhook_id IS NULL AND c.expires_at > f.at
                RETURNING c.callback_id
            ), note AS (
                SELECT pg_notify($5, string_agg(callback_id, ' ')) FROM upd HAVING count(*) > 0
            )
            SELECT u.callback_id IS NOT NULL AND f.n = i.n, c.callback_id IS NOT NULL,
                   c.webhook_id IS NOT NULL, c.expires_at > i.at, (SELECT count(*) FROM note)
            FROM input AS i
            JOIN first AS f USING (callback_id)
            LEFT JOIN upd AS u USING (callback_id)
            LEFT JOIN {t} AS c ON c.callback_id = i.callback_id
            ORDER BY i.n""",
        "cleanup": f"DELETE FROM {t} WHERE (webhook_id IS NULL AND expires_at <= $1) "
        "OR (webhook_id IS NOT NULL AND expires_at + $2::interval <= $1)",
        "state": f"SELECT expires_at, webhook_id, payload, delivered_at FROM {t} WHERE callback_id = $1",
    }
