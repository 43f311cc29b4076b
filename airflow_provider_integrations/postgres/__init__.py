"""Async PostgreSQL on asyncpg, free of Airflow: shared pools, COPY-based bulk loads and upserts,
retrying transactions, multiplexed LISTEN, and typed errors carrying the SQLSTATE.

::

    config.PgConfig ─> pool.lease_pool ─> PgPool.connection() ─> asyncpg connection
                                     ├──> bulk.copy_records / upsert_records, files.copy_csv / copy_jsonl
                                     └──> tx.run_in_transaction / savepoint
    config.PgConfig ─> listen.listener_for ─> Listener.subscribe ─> Subscription (async iterator)
"""

from __future__ import annotations

from airflow_provider_integrations.postgres.bulk import UpsertResult, copy_records, upsert_records
from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.errors import (
    PgDataError,
    PgError,
    PgPoolExhaustedError,
    PgRetriableError,
    translate,
)
from airflow_provider_integrations.postgres.files import copy_csv, copy_jsonl
from airflow_provider_integrations.postgres.ident import quote_ident
from airflow_provider_integrations.postgres.listen import Listener, Notification, Subscription, listener_for
from airflow_provider_integrations.postgres.pool import (
    PgPool,
    acquire_pool,
    close_loop_pools,
    lease_pool,
    release_pool,
)
from airflow_provider_integrations.postgres.tx import run_in_transaction, savepoint, transaction

__all__ = [
    "Listener",
    "Notification",
    "PgConfig",
    "PgDataError",
    "PgError",
    "PgPool",
    "PgPoolExhaustedError",
    "PgRetriableError",
    "Subscription",
    "UpsertResult",
    "acquire_pool",
    "close_loop_pools",
    "copy_csv",
    "copy_jsonl",
    "copy_records",
    "lease_pool",
    "listener_for",
    "quote_ident",
    "release_pool",
    "run_in_transaction",
    "savepoint",
    "transaction",
    "translate",
    "upsert_records",
]
