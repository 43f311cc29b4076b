"""HTTP throughput: 5,000 GETs at concurrency 50 against a local aiohttp server in another process.

Contenders run alternately in the same process and the same run, several rounds each:

- ``raw``: aiohttp with one shared ClientSession (the physical limit);
- ``ours``: ``IntegrationHttpHook.arequest`` (connection cache, shared session, auth/retry/breaker/limiter,
  tracing, typed errors);
- ``official_async``: ``HttpAsyncHook.run()`` of apache-airflow-providers-http, as documented;
- ``official_sync``: ``HttpHook.run()`` in 50 threads.

Reported per contender (median round): requests/s, ratio to raw, client CPU µs per request, TCP
connections the server accepted, and cyclic-garbage objects per request: ``gc.collect()`` after a round
run with the collector disabled, minus the same for a tenth of the requests, divided by the difference
(so the fixed cost of starting and closing an event loop and a session is not charged to requests).

Run: ``.venv/bin/python bench/http_throughput.py [--requests 5000] [--concurrency 50] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import run_concurrently

HERE = Path(__file__).resolve().parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_connections(base: str, reset: bool) -> int:
    req = urllib.request.Request(f"{base}/_connections", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req) as r:
        return int(json.load(r)["connections"])


def contender_raw(base: str, n: int, c: int) -> None:
    import aiohttp

    async def main() -> None:
        async with aiohttp.ClientSession() as session:

            async def call() -> None:
                async with session.get(f"{base}/item") as r:
                    await r.read()
                    assert r.status == 200

            await run_concurrently(n, c, call)

    asyncio.run(main())


def contender_ours(base: str, n: int, c: int) -> None:
    from airflow_provider_integrations.hooks.http import IntegrationHttpHook

    hook = IntegrationHttpHook("bench_ours")

    async def main() -> None:
        # One lease for the run keeps the session open between calls, as a triggerer's waiting tasks do.
        async with hook.client():

            async def call() -> None:
                response = await hook.arequest("GET", "/item")
                assert response.status == 200

            await run_concurrently(n, c, call)

    asyncio.run(main())


def contender_official_async(base: str, n: int, c: int) -> None:
    from airflow.providers.http.hooks.http import HttpAsyncHook

    hook = HttpAsyncHook(method="GET", http_conn_id="bench_official")

    async def main() -> None:
        async def call() -> None:
            response = await hook.run(endpoint="/item")
            assert response.status == 200

        await run_concurrently(n, c, call)

    asyncio.run(main())


def contender_official_sync(base: str, n: int, c: int) -> None:
    from airflow.providers.http.hooks.http import HttpHook

    def call(_: int) -> None:
        response = HttpHook(method="GET", http_conn_id="bench_official").run(endpoint="/item")
        assert response.status_code == 200

    with ThreadPoolExecutor(c) as pool:
        list(pool.map(call, range(n)))


CONTENDERS: dict[str, Callable[[str, int, int], None]] = {
    "raw": contender_raw,
    "ours": contender_ours,
    "official_async": contender_official_async,
    "official_sync": contender_official_sync,
}


def cyclic_garbage(name: str, base: str, n: int, c: int) -> int:
    gc.collect()
    gc.disable()
    try:
        CONTENDERS[name](base, n, c)
    finally:
        found = gc.collect()
        gc.enable()
    return found


def measure(name: str, base: str, n: int, c: int) -> dict[str, float]:
    small = cyclic_garbage(name, base, n // 10, c)
    server_connections(base, reset=True)
    gc.collect()
    gc.disable()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        CONTENDERS[name](base, n, c)
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        garbage = gc.collect()
        gc.enable()
    return {
        "rps": n / wall,
        "cpu_us": cpu / n * 1e6,
        "connections": server_connections(base, reset=False),
        "garbage_per_req": max(0, garbage - small) / (n - n // 10),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(CONTENDERS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_server.py"), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        base = f"http://127.0.0.1:{port}"
        for _ in range(50):
            try:
                server_connections(base, reset=True)
                break
            except OSError:
                time.sleep(0.1)
        os.environ["AIRFLOW_CONN_BENCH_OURS"] = json.dumps(
            {"conn_type": "integration_http", "host": "127.0.0.1", "port": port, "extra": {"scheme": "http"}}
        )
        os.environ["AIRFLOW_CONN_BENCH_OFFICIAL"] = f"http://127.0.0.1:{port}"
        for name in args.only:  # warm-up: imports, first connection lookups
            CONTENDERS[name](base, 200, 10)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in args.only}
        for _ in range(args.rounds):
            for name in args.only:
                rounds[name].append(measure(name, base, args.requests, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()

    results = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()
    }
    if "raw" in rounds:
        # Each round runs the contenders back to back, so per-round ratios cancel most machine drift.
        for name, runs in rounds.items():
            results[name]["x_raw"] = statistics.median(
                r["rps"] / raw_round["rps"] for r, raw_round in zip(runs, rounds["raw"], strict=True)
            )
    from airflow_provider_integrations.hooks.http import CONFIGS

    print(
        f"\n{args.requests} GETs, concurrency {args.concurrency}, median of {args.rounds} alternating rounds"
    )
    print("x raw = median of per-round ratios to raw; the other columns are medians")
    print(f"{'contender':<16}{'req/s':>10}{'x raw':>8}{'CPU µs/req':>12}{'TCP conns':>11}{'gc obj/req':>12}")
    for name, r in results.items():
        ratio = f"{r['x_raw']:.2f}" if "x_raw" in r else "-"
        print(
            f"{name:<16}{r['rps']:>10.0f}{ratio:>8}{r['cpu_us']:>12.0f}{r['connections']:>11.0f}"
            f"{r['garbage_per_req']:>12.2f}"
        )
    if "ours" in results and "official_async" in results:
        ratio = statistics.median(
            o["rps"] / a["rps"] for o, a in zip(rounds["ours"], rounds["official_async"], strict=True)
        )
        print(f"ours / official_async (median per-round ratio): {ratio:.1f}x")
    print(f"connection lookups by our hook in this process: {dict(CONFIGS.lookups)}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "lookups": CONFIGS.lookups}, indent=2))


if __name__ == "__main__":
    main()
