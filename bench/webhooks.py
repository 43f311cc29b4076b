"""Webhook callbacks: receiver throughput per store, and callback-to-resume-event latency of waiting triggers.

1. **Throughput.** The standalone receiver runs as its own process, over each store; the client pre-signs
   every request, so the timed window holds HTTP, signature verification, JSON and schema checks and the
   committed store write (``tests/webhooks/measure_throughput.py`` does the measuring). Every answer
   must be a 202 and every delivery must be in the store afterwards. ``plugin``: the same requests
   through the API-server plugin in a real ``airflow api-server`` (one worker), PostgreSQL store.
2. **Latency.** ``N`` callbacks wait at once in a child process, driven the way ``TriggerRunner`` drives
   triggers (one task per trigger, ``run()`` to its end), over the PostgreSQL store. The parent sends the
   signed callbacks to the receiver process at a steady ``--rate``. Callback-to-event latency runs from
   the receiver holding the callback (its ``received_at``, taken before verification and the store
   commit) to the trigger yielding its event; "sent" latency from the partner sending the request (the
   receiver's HTTP round trip included). Wall clocks of one machine. Contenders, in the same run:

   - ``listen``: ``WebhookCallbackTrigger``, all waiters of the process on one shared LISTEN connection;
   - ``poll_1s``: the same store polled every second per waiter (``store.delivery(id)``), the naive wait.

Run: ``.venv/bin/python bench/webhooks.py [--requests 6000] [--waiters 1000] [--rate 250] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

MARKER = "@@webhooks@@ "
READY = "@@webhooks-ready@@"
PG = {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}
PG_CONN = "bench_webhooks_pg"
CONTENDERS = ("listen", "poll_1s")
TARGETS = {"p99_ms": 20.0, "callbacks_per_s": 1500.0}  # issue 6


# -- throughput -------------------------------------------------------------------------------------------


def throughput(kind: str, requests: int, concurrency: int) -> dict[str, float]:
    """One round over a fresh store: callbacks/s and CPU µs per callback (receiver, PostgreSQL)."""
    from tests.webhooks.measure_throughput import measure

    with store_location(kind) as where:
        rate, receiver_us, pg_us = asyncio.run(measure(kind, where, requests, concurrency))
    return {"callbacks_per_s": rate, "receiver_cpu_us": receiver_us, "pg_cpu_us": pg_us}


def plugin_throughput(requests: int, concurrency: int) -> dict[str, float]:
    """The same, through the API-server plugin: ``airflow api-server`` (one worker), PostgreSQL store."""
    from airflow_provider_integrations.plugins.webhooks import URL_PREFIX
    from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
    from tests._airflow_processes import airflow_home, free_port, migrate_template, wait_for_http
    from tests.integration.callbacks.conftest import entry_point_path
    from tests.webhooks.conftest import make_store, registration, signed
    from tests.webhooks.measure_throughput import cpu_seconds

    with tempfile.TemporaryDirectory() as tmp, store_location("postgres") as schema:
        (template := Path(tmp) / "template").mkdir()
        port = free_port()
        env = {
            "AIRFLOW__INTEGRATIONS__WEBHOOK_STORE": f"postgres_conn://{PG_CONN}?schema={schema}",
            f"AIRFLOW_CONN_{PG_CONN.upper()}": json.dumps(PG),
            "AIRFLOW_CONN_PARTNER": json.dumps({"conn_type": "generic", "password": PARTNER_WEBHOOK_SECRET}),
            # The plugin's entry point: the installed one, or a stand-in until pyproject declares it.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(HERE.parent), entry_point_path(Path(tmp) / "ep")])
            ),
        }
        procs = airflow_home(Path(tmp) / "home", migrate_template(template), [], env)
        api = procs.api_server("api-server", port)
        try:
            wait_for_http(f"http://127.0.0.1:{port}{URL_PREFIX}/health", api)

            async def run() -> tuple[float, list[int]]:
                async with make_store("postgres", schema) as store:
                    regs = [registration(secret_name="partner") for _ in range(requests)]
                    await asyncio.gather(*(store.register(r) for r in regs))
                await close_loops()
                prepared = [(r.callback_id, *signed({"job": i, "status": "ok"})) for i, r in enumerate(regs)]
                return await post_all(f"http://127.0.0.1:{port}{URL_PREFIX}", prepared, concurrency)

            cpu = cpu_seconds(api.proc.pid) + sum(cpu_seconds(c) for c in _children(api.proc.pid))
            elapsed, statuses = asyncio.run(run())
            cpu = cpu_seconds(api.proc.pid) + sum(cpu_seconds(c) for c in _children(api.proc.pid)) - cpu
        finally:
            procs.stop()
    assert statuses.count(202) == requests, {s: statuses.count(s) for s in set(statuses)}
    return {"callbacks_per_s": requests / elapsed, "receiver_cpu_us": cpu / requests * 1e6, "pg_cpu_us": 0.0}


def _children(pid: int) -> list[int]:
    """The API server's worker processes (uvicorn forks them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


async def post_all(
    url: str, prepared: list[tuple[str, bytes, dict[str, str]]], concurrency: int
) -> tuple[float, list[int]]:
    """POST every pre-signed callback with ``concurrency`` in flight; return the elapsed time and statuses."""
    import aiohttp

    statuses: list[int] = []
    queue = iter(prepared)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def worker() -> None:
            for callback_id, body, headers in queue:
                async with http.post(f"{url}/callbacks/{callback_id}", data=body, headers=headers) as r:
                    await r.read()
                    statuses.append(r.status)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses


@contextmanager
def store_location(kind: str) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    from tests.webhooks.conftest import _psql, unique

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield str(Path(tmp) / "callbacks.db")
        return
    schema = unique("whbench")
    _psql(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        _psql(f'DROP SCHEMA "{schema}" CASCADE')


# -- latency: the waiting side (child process) -----------------------------------------------------------


class PollingWait:
    """The naive contender: ask the store for the delivery every ``interval`` seconds."""

    def __init__(self, callback_id: str, interval: float = 1.0) -> None:
        self.callback_id, self.interval = callback_id, interval

    async def run(self, started: list[int]) -> Any:
        from airflow_provider_integrations.hooks.webhooks import WebhookHook

        async with WebhookHook().store() as store:
            first = True
            while (delivery := await store.delivery(self.callback_id)) is None:
                if first:
                    started[0] += 1
                    first = False
                await asyncio.sleep(self.interval)
        return delivery


async def wait_all(contender: str, callback_ids: list[str]) -> dict[str, tuple[float, float]]:
    """Run one waiter per id like TriggerRunner does; announce READY once all wait.

    Returns, per id, when its event came and when the receiver received the callback (``received_at``).
    """
    from airflow_provider_integrations.hooks.webhooks import WebhookHook
    from airflow_provider_integrations.triggers.webhooks import WebhookCallbackTrigger

    fired: dict[str, tuple[float, float]] = {}
    started = [0]

    async def one(callback_id: str) -> None:
        if contender == "listen":
            trigger = WebhookCallbackTrigger(callback_id=callback_id, timeout_at=time.time() + 600)
            async for event in trigger.run():
                received = datetime.fromisoformat(event.payload["received_at"]).timestamp()
                fired[callback_id] = (time.time(), received)
                assert event.payload["status"] == "success", event.payload
        else:
            delivery = await PollingWait(callback_id).run(started)
            fired[callback_id] = (time.time(), delivery.received_at.timestamp())

    tasks = []
    for callback_id in callback_ids:
        tasks.append(asyncio.create_task(one(callback_id)))
        await asyncio.sleep(0)
    async with WebhookHook().store() as store:  # a lease of the shared store, to watch its feed
        while not settled(contender, store, started[0], len(callback_ids)):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # polls counters the waiters keep; nothing to await
        print(READY, flush=True)
        await asyncio.gather(*tasks)
    return fired


def settled(contender: str, store: Any, started: int, n: int) -> bool:
    """Whether all ``n`` waiters wait: subscribed, first read done and nothing in flight (startup over)."""
    if contender != "listen":
        return started == n
    stats = store.pool.stats()
    return bool(store._feed().waiting == n and stats["acquires"] >= n and stats["in_use"] == 0)


def child(contender: str, ids_file: str) -> None:
    callback_ids = json.loads(Path(ids_file).read_text())
    fired = asyncio.run(wait_all(contender, callback_ids))
    print(MARKER + json.dumps(fired), flush=True)


# -- latency: the calling side (parent) ------------------------------------------------------------------


def latency(contender: str, waiters: int, rate: float, warmup: int = 100) -> dict[str, Any]:
    """One round: ``waiters`` callbacks waiting in a child process, called back at ``rate`` per second.

    ``warmup`` callbacks nobody waits for go first, so the receiver is warm (its first requests open
    pooled connections and run cold code), as a deployed one is; they are not measured.
    """
    from airflow_provider_integrations.webhooks import PayloadCodec
    from tests.webhooks.conftest import SECRETS, ReceiverProcess, make_store, registration, store_url

    with store_location("postgres") as schema:

        async def register() -> list[str]:
            async with make_store("postgres", schema, codec=PayloadCodec()) as store:
                regs = [registration(secret_name="partner") for _ in range(warmup + waiters)]
                await asyncio.gather(*(store.register(r) for r in regs))
            await close_loops()
            return [r.callback_id for r in regs]

        warm_ids, callback_ids = (ids := asyncio.run(register()))[:warmup], ids[warmup:]
        receiver = ReceiverProcess(store_url("postgres", schema), SECRETS).start()
        with tempfile.NamedTemporaryFile("w", suffix=".json") as ids_file:
            ids_file.write(json.dumps(callback_ids))
            ids_file.flush()
            env = {
                **os.environ,
                "PYTHONPATH": str(HERE.parent),
                "AIRFLOW__INTEGRATIONS__WEBHOOK_STORE": f"postgres_conn://{PG_CONN}?schema={schema}",
                f"AIRFLOW_CONN_{PG_CONN.upper()}": json.dumps(PG),
            }
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", contender, ids_file.name]
            with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
                # Drained all along: the triggers log a line per event, and a full pipe would stall them.
                lines: list[str] = []
                ready = threading.Event()
                pump = threading.Thread(target=_pump, args=(proc, lines, ready), daemon=True)
                pump.start()
                try:
                    if not ready.wait(300):
                        raise RuntimeError("the waiting child never got ready:\n" + "".join(lines[-20:]))
                    listeners = listen_sessions(schema)
                    sent, acked = asyncio.run(call_back(receiver.url, warm_ids + callback_ids, rate))
                    proc.wait(120)
                    pump.join(10)
                finally:
                    receiver.close()
                    if proc.poll() is None:
                        proc.kill()
    fired: dict[str, list[float]] = next(
        json.loads(line[len(MARKER) :]) for line in lines if line.startswith(MARKER)
    )
    return {
        "waiters": waiters,
        "events": len(fired),
        # The target: from the receiver holding the (verified) callback to the trigger's event; store
        # commit, NOTIFY (or the next poll), wake-up and re-read included.
        **percentiles("", [fired[cid][0] - fired[cid][1] for cid in callback_ids]),
        # The partner's view: from sending the request; the receiver's HTTP round trip included.
        **percentiles("sent_", [fired[cid][0] - sent[cid] for cid in callback_ids]),
        **percentiles("http_", [acked[cid] - sent[cid] for cid in callback_ids]),
        "listen_connections": listeners,
    }


def percentiles(prefix: str, seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        f"{prefix}p50_ms": ms[len(ms) // 2],
        f"{prefix}p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        f"{prefix}max_ms": ms[-1],
    }


def _pump(proc: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.strip() == READY:
            ready.set()


async def call_back(
    url: str, callback_ids: list[str], rate: float
) -> tuple[dict[str, float], dict[str, float]]:
    """POST every callback, one every ``1/rate`` s (a partner's steady stream); return send and 202 times."""
    import aiohttp

    from tests.webhooks.conftest import signed

    prepared = [(cid, *signed({"status": "succeeded", "i": i})) for i, cid in enumerate(callback_ids)]
    sent: dict[str, float] = {}
    acked: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async with aiohttp.ClientSession() as http:

        async def post(callback_id: str, body: bytes, headers: dict[str, str]) -> None:
            sent[callback_id] = time.time()
            async with http.post(f"{url}/callbacks/{callback_id}", data=body, headers=headers) as r:
                acked[callback_id] = time.time()
                assert r.status == 202, (r.status, await r.text())

        start, posts = loop.time(), []
        for i, (callback_id, body, headers) in enumerate(prepared):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            posts.append(asyncio.create_task(post(callback_id, body, headers)))
        await asyncio.gather(*posts)
    return sent, acked


def listen_sessions(schema: str) -> int:
    """LISTEN sessions on the store's channel right now (every waiter of a process shares one)."""
    query = f"SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN \"{schema}.%'"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qAtc", query]
    out = subprocess.run(psql, check=True, capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip())


async def close_loops() -> None:
    from airflow_provider_integrations.postgres.listen import close_loop_listeners
    from airflow_provider_integrations.postgres.pool import close_loop_pools

    await close_loop_listeners()
    await close_loop_pools()


# -- report -------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=6000, help="callbacks per throughput round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--waiters", type=int, default=1000, help="concurrently waiting callbacks")
    parser.add_argument("--rate", type=float, default=250.0, help="callbacks per second in the latency test")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--stores", default="postgres,sqlite,plugin", help="plugin: the API-server plugin, PostgreSQL store"
    )
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "IDS_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print(f"receiver throughput: {args.requests} pre-signed callbacks, concurrency {args.concurrency}")
    for kind in args.stores.split(","):
        measure = plugin_throughput if kind == "plugin" else functools.partial(throughput, kind)
        rounds = sorted(
            (measure(args.requests, args.concurrency) for _ in range(args.rounds)),
            key=lambda r: r["callbacks_per_s"],
        )
        med = rounds[len(rounds) // 2]
        rates = ", ".join(f"{r['callbacks_per_s']:,.0f}" for r in rounds)
        met = "met" if med["callbacks_per_s"] >= TARGETS["callbacks_per_s"] else "MISSED"
        print(
            f"  {kind:<8} median {med['callbacks_per_s']:>7,.0f} callbacks/s (rounds {rates}); CPU per "
            f"callback: receiver {med['receiver_cpu_us']:.0f} µs, postgres {med['pg_cpu_us']:.0f} µs; "
            f"target >= {TARGETS['callbacks_per_s']:,.0f}: {met}"
        )

    print(f"callback -> resume event: {args.waiters} waiting, PostgreSQL store, {args.rate:g} callbacks/s")
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for _ in range(args.rounds):
        for contender in CONTENDERS:  # alternated, so both see the same machine load
            results[contender].append(latency(contender, args.waiters, args.rate))
    print("  (received: from the receiver holding the callback; sent: from the partner sending it)")
    for contender, rounds in results.items():

        def med(key: str, rounds: list[dict[str, Any]] = rounds) -> float:
            return float(statistics.median(r[key] for r in rounds))

        p99 = med("p99_ms")
        met = "met" if p99 <= TARGETS["p99_ms"] else "MISSED"
        verdict = f"; target p99 <= {TARGETS['p99_ms']:g} ms: {met}" if contender == "listen" else ""
        print(
            f"  {contender:<8} received->event p50 {med('p50_ms'):6.1f} ms p99 {p99:6.1f} ms | "
            f"sent->event p50 {med('sent_p50_ms'):6.1f} p99 {med('sent_p99_ms'):6.1f} | receiver HTTP p99 "
            f"{med('http_p99_ms'):5.1f} | events {sorted({r['events'] for r in rounds})} | LISTEN sessions "
            f"{sorted({r['listen_connections'] for r in rounds})}{verdict}"
        )
    print(MARKER + json.dumps(results))


if __name__ == "__main__":
    main()
