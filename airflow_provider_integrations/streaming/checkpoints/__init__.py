"""Checkpoints: the last position a consumer has fully processed, per (stream, consumer).

Commit a position only after everything up to it is stored downstream: a crash then replays at most
the uncommitted events (at-least-once), and an idempotent sink (an upsert keyed by the event's id)
makes the replay harmless, so the result is the same as exactly-once. Stores:

- :class:`SqliteCheckpointStore`: a local file (stdlib ``sqlite3``), the default; one machine.
- :class:`PgCheckpointStore`: a PostgreSQL table (asyncpg, shared pool); many processes and machines.
"""

from __future__ import annotations

from airflow_provider_integrations.streaming.checkpoints.base import Checkpoint, CheckpointStore
from airflow_provider_integrations.streaming.checkpoints.postgres import PgCheckpointStore
from airflow_provider_integrations.streaming.checkpoints.sqlite import SqliteCheckpointStore

__all__ = ["Checkpoint", "CheckpointStore", "PgCheckpointStore", "SqliteCheckpointStore"]
