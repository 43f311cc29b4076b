"""SIGKILL the consumer process mid-stream, restart it: every sequence number reaches the table, once.

The consumer (``tests/streaming/_consumer.py``) stores each window, then commits its checkpoint. A kill
between the two replays that window after the restart (at-least-once); the upsert keyed by ``seq``
absorbs the replay, so the destination equals the source: same count, same checksum.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.sandbox.streams import payload
from tests.postgres.conftest import SERVER

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 3000
SIZE = 120
STREAM_PARAMS = {"total": TOTAL, "rate": 1500, "size": SIZE, "drop_every": 700}


def start_consumer(kind: str, url: str, key: str, schema: str, store: str) -> subprocess.Popen[bytes]:
    params = json.dumps({"key": key, **STREAM_PARAMS}) if kind != "pg_tail" else "{}"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.streaming._consumer",
            kind,
            url,
            key,
            schema,
            store,
            str(TOTAL),
            params,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def stored(admin: asyncpg.Connection, schema: str) -> int:
    count: int = await admin.fetchval(f'SELECT count(*) FROM "{schema}".dest')
    return count


async def produce_outbox(admin: asyncpg.Connection, schema: str) -> None:
    """The pg_tail kind's producer: 100 rows every 50 ms (a 1.5 s stream, like the HTTP kinds)."""
    for first in range(1, TOTAL + 1, 100):
        await admin.execute(
            f'INSERT INTO "{schema}".outbox (payload)'
            " SELECT json_build_object('seq', g, 'pad', repeat('x', 50))"
            " FROM generate_series($1::int, $2::int) g",
            first,
            first + 99,
        )
        await asyncio.sleep(0.05)  # the producer's pace


@pytest.mark.parametrize(
    ("kind", "store"),
    [("sse", "sqlite"), ("ndjson", "postgres"), ("websocket", "sqlite"), ("pg_tail", "postgres")],
)
async def test_killed_consumer_resumes_from_its_checkpoint_and_loses_nothing(
    kind: str,
    store: str,
    sandbox: SandboxProcess,
    admin: asyncpg.Connection,
    schema: str,
    tmp_path: Path,
    key: str,
) -> None:
    await admin.execute(f'CREATE TABLE "{schema}".dest (seq int PRIMARY KEY, body text NOT NULL)')
    await admin.execute(f'CREATE TABLE "{schema}".receipts (seq int NOT NULL)')
    await admin.execute(f'CREATE TABLE "{schema}".outbox (id bigserial PRIMARY KEY, payload jsonb NOT NULL)')
    store_spec = "postgres" if store == "postgres" else str(tmp_path / "checkpoints.db")
    writer = await asyncpg.connect(**SERVER)
    producer = asyncio.create_task(produce_outbox(writer, schema)) if kind == "pg_tail" else None
    try:
        first = start_consumer(kind, sandbox.url, key, schema, store_spec)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while await stored(admin, schema) < TOTAL // 5:
                assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
                assert loop.time() < deadline, "the consumer stored nothing"
                await asyncio.sleep(0.02)  # polling the destination table, the consumer's only output
            first.send_signal(signal.SIGKILL)
        finally:
            await asyncio.to_thread(first.communicate)
        assert first.returncode == -signal.SIGKILL
        assert await stored(admin, schema) < TOTAL, "killed mid-stream"

        second = start_consumer(kind, sandbox.url, key, schema, store_spec)
        _, err = await asyncio.to_thread(second.communicate, None, 120)
        assert second.returncode == 0, err.decode()
    finally:
        if producer is not None:
            await producer
        await writer.close()

    assert await stored(admin, schema) == TOTAL
    assert await admin.fetchval(f'SELECT count(DISTINCT seq) FROM "{schema}".receipts') == TOTAL
    dest_sum = await admin.fetchval(f"SELECT md5(string_agg(body, '|' ORDER BY seq)) FROM \"{schema}\".dest")
    if kind == "pg_tail":
        expected = await admin.fetchval(
            f"SELECT md5(string_agg(payload::text, '|' ORDER BY id)) FROM \"{schema}\".outbox"
        )
    else:
        bodies = "|".join(payload(seq, SIZE) for seq in range(1, TOTAL + 1))
        expected = hashlib.md5(bodies.encode(), usedforsecurity=False).hexdigest()
    assert dest_sum == expected
    # The restart resumed at the checkpoint: at most the window stored but not yet committed when the
    # kill came (50 events) was delivered twice, and the upsert made that harmless.
    replayed = await admin.fetchval(f'SELECT count(*) FROM "{schema}".receipts') - TOTAL
    assert 0 <= replayed <= 50
