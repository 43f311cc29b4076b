"""Streaming: events/s our sources consume, against the fastest raw loop for each format, same run.

The sandbox (``python -m airflow_provider_integrations.sandbox``) serves the streams from its own
process; each contender runs in a fresh child process, back to back, for several rounds:

- SSE: ``raw_sse_lines`` (aiohttp ``readline()``), ``raw_sse`` (read chunks, split blocks and lines,
  pick ``id``/``data``), ``ours_sse`` (:class:`SseSource`);
- NDJSON: ``raw_ndjson_lines`` (``readline()``), ``raw_ndjson`` (read chunks, split lines),
  ``ours_ndjson`` (offset positions) and ``ours_ndjson_cursor`` (``seq`` positions, read lazily);
- WebSocket: ``raw_ws_iter`` (``async for msg in ws``), ``raw_ws`` (a ``ws.receive()`` loop),
  ``ours_ws`` (:class:`WebSocketSource`);
- LISTEN/NOTIFY: ``raw_notify`` (an asyncpg listener callback), ``ours_notify`` (:class:`PgNotifySource`
  on the shared LISTEN connection); a second connection sends batched ``pg_notify`` (10,000 per
  statement) in the same child.

Consumers touch every event and stop at the last one: ``ours_*`` with ``async for event in source``,
``ours_*_batches`` with ``source.read_batch()`` and a plain loop (what windows use), raw loops with a
plain loop over the lines they split. Reported per contender: events/s (median), "x raw" (the median
over rounds of the ratio to that round's fastest raw loop of the format) and client CPU µs per event
(``process_time``).

Then, ours only: event-to-window latency (SSE at ``--latency-rate`` events/s with the server's send
time in each event; count windows of 100 with a 50 ms flush) and peak RSS under a producer burst
(an endless 1 KB-event SSE stream at full speed, a consumer 10x slower; against a naive reader that
queues without bound).

Run: ``.venv/bin/python bench/streaming.py [--events 200000] [--size 200] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import rss_bytes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
MARKER = "@@streaming@@ "
FORMATS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sse": (("raw_sse_lines", "raw_sse"), ("ours_sse", "ours_sse_batches")),
    "ndjson": (
        ("raw_ndjson_lines", "raw_ndjson"),
        ("ours_ndjson", "ours_ndjson_batches", "ours_ndjson_cursor", "ours_ndjson_cursor_batches"),
    ),
    "websocket": (("raw_ws_iter", "raw_ws"), ("ours_ws", "ours_ws_batches")),
    "notify": (("raw_notify",), ("ours_notify",)),
}
TARGETS = {"sse": 0.7, "ndjson": 0.7, "websocket": 0.7, "notify": 0.5}
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
READ = 2**18  # bytes per read for raw loops and ours alike
NAIVE_CAP = 300_000  # events the unbounded reader may queue before the benchmark stops it


# -- contenders (child side) ----------------------------------------------------------------------


async def raw_sse_lines(url: str, n: int, size: int) -> int:
    import aiohttp

    count, data = 0, None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/streams/sse", params={"total": n, "size": size}, read_bufsize=READ) as resp,
    ):
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if data is not None:
                    count += 1
                data = None
            elif line.startswith("data:"):
                data = line[5:]
    return count


async def raw_sse(url: str, n: int, size: int) -> int:
    import aiohttp

    count, tail = 0, ""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/streams/sse", params={"total": n, "size": size}, read_bufsize=READ) as resp,
    ):
        read = resp.content.readany
        while chunk := await read():
            blocks = (tail + chunk.decode()).split("\n\n")
            tail = blocks.pop()
            for block in blocks:
                data = last_id = None
                for line in block.split("\n"):
                    if line.startswith("data:"):
                        data = line[5:]
                    elif line.startswith("id:"):
                        last_id = line[3:]
                if data is not None and last_id is not None:
                    count += 1
    return count


async def raw_ndjson_lines(url: str, n: int, size: int) -> int:
    import aiohttp

    count = 0
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/streams/ndjson", params={"total": n, "size": size}, read_bufsize=READ) as resp,
    ):
        async for line in resp.content:
            if line.strip():
                count += 1
    return count


async def raw_ndjson(url: str, n: int, size: int) -> int:
    import aiohttp

    count, tail = 0, b""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/streams/ndjson", params={"total": n, "size": size}, read_bufsize=READ) as resp,
    ):
        read = resp.content.readany
        while chunk := await read():
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line:
                    count += 1
    return count


async def raw_ws_iter(url: str, n: int, size: int) -> int:
    import aiohttp

    count = 0
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/streams/ws", params={"total": n, "size": size}) as ws,
    ):
        await ws.send_str("{}")
        async for _ in ws:
            count += 1
    return count


async def raw_ws(url: str, n: int, size: int) -> int:
    import aiohttp

    count, text = 0, aiohttp.WSMsgType.TEXT
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/streams/ws", params={"total": n, "size": size}) as ws,
    ):
        await ws.send_str("{}")
        receive = ws.receive
        while (await receive()).type is text:
            count += 1
    return count


async def ours(kind: str, url: str, n: int, size: int) -> int:
    batches = kind.endswith("_batches")
    kind = kind.removesuffix("_batches")
    from airflow_provider_integrations.connections.http_config import HttpClientConfig
    from airflow_provider_integrations.streaming import (
        NdjsonSource,
        SseSource,
        StreamOptions,
        WebSocketSource,
    )

    config = HttpClientConfig(base_url=url, name="bench")
    params = {"total": n, "size": size}
    options = StreamOptions(chunk_size=READ)
    source: Any
    if kind == "ours_sse":
        source = SseSource(config, "/streams/sse", params=params, options=options)
    elif kind == "ours_ndjson":
        source = NdjsonSource(config, "/streams/ndjson", params=params, options=options)
    elif kind == "ours_ndjson_cursor":
        source = NdjsonSource(config, "/streams/ndjson", params=params, position_field="seq", options=options)
    else:
        source = WebSocketSource(config, "/streams/ws", params=params, hello={}, options=options)
    count = 0
    async with source.open():
        if batches:
            # The batch API (what windows use): a plain loop over each read's events.
            while count < n and (batch := await source.read_batch(n - count)) is not None:
                for _ in batch:
                    count += 1
        else:
            async for _ in source:
                count += 1
                if count == n:
                    break
        # A consumer checkpoints positions: reading the last one parses one event (cursor mode).
        assert int(source.position) == n
    return count


async def notify(kind: str, n: int) -> int:
    import asyncpg

    channel = f"bench_{uuid.uuid4().hex[:8]}"
    producer = await asyncpg.connect(**PG)
    done = asyncio.Event()
    count = 0

    async def produce() -> None:
        for first in range(1, n + 1, 10_000):
            await producer.execute(
                "SELECT pg_notify($1, g::text) FROM generate_series($2::int, $3::int) g",
                channel,
                first,
                min(n, first + 9_999),
            )

    try:
        if kind == "raw_notify":
            listener = await asyncpg.connect(**PG)

            def on_note(*_: object) -> None:
                nonlocal count
                count += 1
                if count == n:
                    done.set()

            await listener.add_listener(channel, on_note)
            await produce()
            await done.wait()
            await listener.close()
            return count
        from airflow_provider_integrations.postgres import PgConfig
        from airflow_provider_integrations.postgres.listen import close_loop_listeners
        from airflow_provider_integrations.streaming import PgNotifySource, StreamOptions

        # Notifications cannot be replayed: the buffer holds the whole burst, as the raw callback does.
        source = PgNotifySource(PgConfig(database="test"), channel, options=StreamOptions(max_buffered=n))
        async with source.open():
            await source.ready()
            producing = asyncio.create_task(produce())
            async for _ in source:
                count += 1
                if count == n:
                    break
            await producing
        await close_loop_listeners()
        assert source.dropped == 0
        return count
    finally:
        await producer.close()


def contender(name: str, url: str, n: int, size: int) -> Callable[[], Awaitable[int]]:
    raw: dict[str, Callable[[str, int, int], Awaitable[int]]] = {
        "raw_sse_lines": raw_sse_lines,
        "raw_sse": raw_sse,
        "raw_ndjson_lines": raw_ndjson_lines,
        "raw_ndjson": raw_ndjson,
        "raw_ws_iter": raw_ws_iter,
        "raw_ws": raw_ws,
    }
    if name in raw:
        return lambda: raw[name](url, n, size)
    if name.endswith("notify"):
        return lambda: notify(name, n)
    return lambda: ours(name, url, n, size)


def measure(name: str, url: str, n: int, size: int) -> dict[str, float]:
    # Imports are not consumption: load every contender's modules before the clock starts.
    import aiohttp  # noqa: F401
    import asyncpg  # noqa: F401

    import airflow_provider_integrations.postgres
    import airflow_provider_integrations.streaming  # noqa: F401

    run = contender(name, url, n, size)

    async def timed() -> tuple[int, float, float]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        count = await run()
        return count, time.perf_counter() - t0, time.process_time() - cpu0

    count, wall, cpu = asyncio.run(timed())
    if count != n:
        raise RuntimeError(f"{name} consumed {count} of {n} events")
    return {"eps": n / wall, "cpu_us": cpu / n * 1e6}


async def latency(url: str, rate: int, seconds: float) -> dict[str, float]:
    from airflow_provider_integrations.connections.http_config import HttpClientConfig
    from airflow_provider_integrations.streaming import SseSource, WindowSpec, windows

    total = int(rate * seconds)
    source = SseSource(
        HttpClientConfig(base_url=url),
        "/streams/sse",
        params={"total": total, "rate": rate, "ts": 1, "size": 200},
    )
    every: list[float] = []
    last: list[float] = []
    async with source.open():
        async for window in windows(source, WindowSpec(max_events=100, max_seconds=0.05)):
            now = time.time()
            sent = [event.json()["ts"] for event in window.events]
            every.extend(now - t for t in sent)
            last.append(now - sent[-1])
            if window.last_position == str(total):
                break
    q = statistics.quantiles(every, n=100)
    return {
        "p50_ms": statistics.median(every) * 1e3,
        "p99_ms": q[98] * 1e3,
        "last_event_p50_ms": statistics.median(last) * 1e3,
        "events": len(every),
    }


async def burst(kind: str, url: str, consume: int, key: str) -> dict[str, float]:
    """Peak RSS while a full-speed producer meets a consumer that sleeps 1 ms per 20 events."""
    from airflow_provider_integrations.connections.http_config import HttpClientConfig
    from airflow_provider_integrations.streaming import SseParser, SseSource

    baseline = peak = rss_bytes()
    params = {"size": 1000, "key": key}

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    count = 0
    if kind == "ours":
        source = SseSource(HttpClientConfig(base_url=url), "/streams/sse", params=params)
        async with source.open():
            async for _ in source:
                count += 1
                if count % 20 == 0:
                    await asyncio.sleep(0.001)
                if count == consume:
                    break
    else:  # a reader task that queues every event, without a bound (stopped at NAIVE_CAP, to spare RAM)
        import aiohttp

        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def reader(resp: aiohttp.ClientResponse) -> None:
            parser = SseParser()
            while queue.qsize() < NAIVE_CAP and (chunk := await resp.content.readany()):
                for event in parser.feed(chunk, 0.0):
                    queue.put_nowait(event)

        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/streams/sse", params=params) as resp,
        ):
            task = asyncio.create_task(reader(resp))
            while count < consume:
                await queue.get()
                count += 1
                if count % 20 == 0:
                    await asyncio.sleep(0.001)
            task.cancel()
    elapsed = time.perf_counter() - started
    sampler.cancel()
    return {"peak_rss_mb": (peak - baseline) / 2**20, "consumer_eps": consume / elapsed}


# -- parent side ----------------------------------------------------------------------------------


def run_child(*args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    return result


def sent_events(url: str, key: str) -> int:
    with urllib.request.urlopen(f"{url}/streams/stats?key={key}", timeout=10) as r:
        return int(json.load(r)["sent"])


def run(
    url: str, events: int, size: int, rounds: int, formats: list[str], only: set[str] | None = None
) -> dict[str, Any]:
    """Every contender of ``formats`` (or those in ``only``) in a child process, ``rounds`` times."""
    runs: dict[str, list[dict[str, float]]] = {}
    chosen = {
        fmt: tuple(tuple(c for c in group if only is None or c in only) for group in FORMATS[fmt])
        for fmt in formats
    }
    for _ in range(rounds):
        for fmt in formats:
            raws, ourss = chosen[fmt]
            n = events // 2 if fmt in ("websocket", "notify") else events
            for name in (*raws, *ourss):
                runs.setdefault(name, []).append(run_child("measure", name, url, str(n), str(size)))
    summary: dict[str, Any] = {}
    for fmt in formats:
        raws, ourss = chosen[fmt]
        best_raw = [max(runs[r][i]["eps"] for r in raws) for i in range(rounds)]
        for name in (*raws, *ourss):
            summary[name] = {
                "format": fmt,
                "eps": statistics.median(r["eps"] for r in runs[name]),
                "cpu_us": statistics.median(r["cpu_us"] for r in runs[name]),
                "x_raw": statistics.median(r["eps"] / b for r, b in zip(runs[name], best_raw, strict=True)),
                "x_raw_min": min(r["eps"] / b for r, b in zip(runs[name], best_raw, strict=True)),
                "x_raw_max": max(r["eps"] / b for r, b in zip(runs[name], best_raw, strict=True)),
            }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="per HTTP run; half for ws and notify")
    parser.add_argument("--size", type=int, default=200, help="bytes per event payload")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--latency-rate", type=int, default=5000)
    parser.add_argument("--burst-events", type=int, default=50_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, *rest = args.child
        if what == "measure":
            name, url, n, size = rest
            result: Any = measure(name, url, int(n), int(size))
        elif what == "latency":
            result = asyncio.run(latency(rest[0], int(rest[1]), 3.0))
        else:
            kind, url, consume, key = rest
            result = asyncio.run(burst(kind, url, int(consume), key))
        print(MARKER + json.dumps(result), flush=True)
        return

    from airflow_provider_integrations.sandbox.process import SandboxProcess

    with SandboxProcess() as sandbox:
        url = sandbox.url
        summary = run(url, args.events, args.size, args.rounds, args.formats)
        lat = run_child("latency", url, str(args.latency_rate))
        bursts = {}
        for kind in ("ours", "naive"):
            key = f"burst-{kind}-{uuid.uuid4().hex[:6]}"
            bursts[kind] = run_child("burst", kind, url, str(args.burst_events), key)
            bursts[kind]["backlog"] = sent_events(url, key) - args.burst_events

    print(f"\n{args.events} events of ~{args.size} B (ws, notify: half), median of {args.rounds} rounds")
    print("x raw = median over rounds of events/s / that round's fastest raw loop of the format [min-max]")
    print(f"{'contender':<20}{'events/s':>11}{'x raw':>8}{'range':>13}{'CPU µs/ev':>11}")
    for name, r in summary.items():
        rng = f"{r['x_raw_min']:.2f}-{r['x_raw_max']:.2f}"
        print(f"{name:<20}{r['eps']:>11.0f}{r['x_raw']:>8.2f}{rng:>13}{r['cpu_us']:>11.2f}")
    print(
        f"\nevent-to-window latency at {args.latency_rate} events/s (windows of 100, 50 ms flush): "
        f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms; last event of a window p50 "
        f"{lat['last_event_p50_ms']:.2f} ms"
    )
    free = summary.get("raw_sse", {}).get("eps")
    for kind, b in bursts.items():
        print(
            f"burst of 1 KB events, {kind}: peak RSS +{b['peak_rss_mb']:.1f} MB; "
            f"consumer {b['consumer_eps']:.0f} ev/s"
            + (f" (the server alone: {free:.0f} ev/s of 200 B)" if free else "")
            + f"; sent but not consumed at the end: {b['backlog']} events"
        )
    misses = [
        f"{name}: {r['x_raw']:.2f} < {TARGETS[r['format']]}"
        for name, r in summary.items()
        if name.startswith("ours") and r["x_raw"] < TARGETS[r["format"]]
    ]
    print("targets met" if not misses else "targets missed: " + "; ".join(misses))
    if args.json:
        args.json.write_text(json.dumps({"throughput": summary, "latency": lat, "burst": bursts}, indent=2))


if __name__ == "__main__":
    main()
