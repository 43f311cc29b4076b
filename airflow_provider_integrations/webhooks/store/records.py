"""Rows to registrations, shared by both stores (the column order is the same in each)."""

from __future__ import annotations

import json
from datetime import datetime

from airflow_provider_integrations.webhooks.ids import CallbackRegistration


def registration_from_row(
    callback_id: str,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int,
    try_number: int,
    secret_name: str,
    schema_json: str | None,
    created_at: datetime,
    expires_at: datetime,
) -> CallbackRegistration:
    return CallbackRegistration(
        callback_id=callback_id,
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        secret_name=secret_name,
        schema=None if schema_json is None else json.loads(schema_json),
        created_at=created_at,
        expires_at=expires_at,
    )


def same_binding(a: CallbackRegistration, b: CallbackRegistration) -> bool:
    """Whether two records bind the id to the same task try, secret, schema and expiry.

    ``created_at`` is left out: a retried ``register`` call may have rebuilt the record a moment later.
    Timestamps are compared to the millisecond, the precision both stores keep for certain.
    """

    def key(r: CallbackRegistration) -> tuple[object, ...]:
        return (
            r.callback_id, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.secret_name,
            r.schema_json, round(r.expires_at.timestamp(), 3),
        )  # fmt: skip

    return key(a) == key(b)
