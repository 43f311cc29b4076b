"""Trigger density: thousands of waiting polling triggers in one event loop, the way a triggerer runs them.

Scenarios (``N x interval x polls``): N status URLs (one per trigger, ``/poll-after?key=...``) that
answer "done" on the given poll. Per scenario, in the same run and in this order, each contender runs
in its own child process (so RSS and state are its own) against ``bench/_poll_server.py``:

- ``raw``: one aiohttp ``ClientSession`` (pool 100) and a plain poll/sleep loop per URL (the limit);
- ``ours``: ``ApiPollTrigger`` (one shared session per connection, pool 100, conditions as data);
- ``official``: ``HttpSensorTrigger`` of apache-airflow-providers-http (404 until done), for as long as
  it survives: it is cancelled after ``--official-cap`` x the raw wall time.

Triggers are driven like ``TriggerRunner`` does: constructed, wrapped in a task that opens a greenback
portal and iterates ``run()`` to its end, with ``await asyncio.sleep(0)`` between creations.

Reported: wall time until every trigger fired (and its ratio to raw), max event-loop lag (a 50 ms
ticker's lateness), peak RSS over the child's post-import baseline (sampled by the ticker), client CPU
per poll (requests counted by the server), TCP connections the server accepted.

Run: ``.venv/bin/python bench/trigger_density.py [--scenarios 1000x1x5 2000x1x5 10000x5x3]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import rss_bytes

HERE = Path(__file__).resolve().parent
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
MARKER = "@@density@@ "
CONTENDERS = ("raw", "ours", "official")
POOL = 100
TARGETS = {2000: 1.2, 10000: 1.3}  # wall-time ratio to raw (issue 5)


class Ticker:
    """Every 50 ms: how late the loop woke us (event-loop lag), the RSS, and an optional probe's max."""

    def __init__(self, probe: Callable[[], int] | None = None) -> None:
        self.max_lag = 0.0
        self.max_rss = rss_bytes()
        self.probe, self.probe_max = probe, 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + 0.05
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            self.max_lag = max(self.max_lag, now - due)
            self.max_rss = max(self.max_rss, rss_bytes())
            if self.probe is not None:
                self.probe_max = max(self.probe_max, self.probe())
            due = now + 0.05


class GcClock:
    """Full (generation 2) collections and their CPU time: what the loop-lag peaks are made of."""

    def __init__(self) -> None:
        self.full, self.cpu, self._t = 0, 0.0, 0.0
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.process_time()
        elif info["generation"] == 2:
            self.full += 1
            self.cpu += time.process_time() - self._t


async def drive(
    n: int, make: Callable[[int], Any], fired: Callable[[Any], bool], cap: float, portal: bool
) -> tuple[float, int]:
    """Start ``n`` triggers like ``TriggerRunner.create_triggers``; return (wall, fired) within ``cap``."""
    import greenback

    async def run_trigger(trigger: Any) -> bool:
        # TriggerRunner.run_trigger without its logging: a portal for sync SDK calls, then run() to the end.
        if portal:
            await greenback.ensure_portal()
        ok = False
        async for event in trigger.run():
            ok = fired(event.payload)
        return ok

    t0 = time.perf_counter()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(run_trigger(make(i))))
        await asyncio.sleep(0)
    done, pending = await asyncio.wait(tasks, timeout=max(0.0, cap - (time.perf_counter() - t0)))
    wall = time.perf_counter() - t0
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return wall, sum(1 for t in done if t.exception() is None and t.result())


class RawPoll:
    """The limit: a bare poll/sleep loop on one shared session, shaped like a trigger (``run()`` yields)."""

    def __init__(self, session: Any, url: str, interval: float) -> None:
        self.session, self.url, self.interval = session, url, interval

    async def run(self) -> AsyncIterator[Any]:
        while True:
            async with self.session.get(self.url) as response:
                doc = await response.json()
            if response.status == 200 and doc.get("status") == "done":
                yield SimpleNamespace(payload=doc)
                return
            await asyncio.sleep(self.interval)


def measure(
    contender: str,
    n: int,
    interval: float,
    polls: int,
    base: str,
    cap: float,
    portal: bool = True,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    """Run one contender in this process (its own event loop) and return its measurements."""
    import aiohttp

    run = uuid.uuid4().hex[:8]
    probe: Callable[[], int] | None = None
    session: aiohttp.ClientSession | None = None
    make: Callable[[int], Any]
    if contender == "raw":
        make = lambda i: RawPoll(session, f"{base}/poll-after?polls={polls}&key={run}-{i}", interval)  # noqa: E731
        fired: Callable[[Any], bool] = lambda doc: doc["status"] == "done"  # noqa: E731
    elif contender == "ours":
        from airflow_provider_integrations.http import sessions
        from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger

        def make(i: int) -> Any:
            return ApiPollTrigger(
                conn_id="bench_poll",
                endpoint="/poll-after",
                params={"polls": polls, "key": f"{run}-{i}"},
                success_condition={"jmespath": "status", "equals": "done"},
                poll_interval=interval,
            )

        fired = lambda event: event["status"] == "success"  # noqa: E731
        probe = sessions.open_clients
    else:
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        def make(i: int) -> Any:
            return HttpSensorTrigger(
                endpoint=f"/poll-after?polls={polls}&pending_status=404&key={run}-{i}",
                http_conn_id="bench_official",
                poke_interval=interval,
            )

        fired = lambda event: event is True  # noqa: E731

    # Every contender runs in a process holding the triggerer's heap (about 210,000 objects), as it would
    # inside `airflow triggerer`: full garbage collections walk it, and they are the loop-lag peaks.
    import airflow.jobs.triggerer_job_runner  # noqa: F401

    gc.collect()
    if gc_freeze:
        gc.freeze()  # what Airflow's DAG processor manager does after startup (dag_processing/manager.py)
    baseline, cpu0, gc_clock = rss_bytes(), time.process_time(), GcClock()

    async def main() -> tuple[float, int, Ticker]:
        nonlocal session
        if contender == "raw":
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))
        ticker = Ticker(probe)
        ticking = asyncio.create_task(ticker.run())
        try:
            wall, completed = await drive(n, make, fired, cap, portal)
        finally:
            ticking.cancel()
            if session is not None:
                await session.close()
        return wall, completed, ticker

    try:
        wall, completed, ticker = asyncio.run(main())
    finally:
        gc.callbacks.remove(gc_clock.callback)
        if gc_freeze:
            gc.unfreeze()
    result: dict[str, Any] = {
        "wall": wall,
        "completed": completed,
        "lag_ms": ticker.max_lag * 1000,
        "rss_mb": (ticker.max_rss - baseline) / 2**20,
        "cpu_s": time.process_time() - cpu0,
        "full_gcs": gc_clock.full,
        "full_gc_cpu_s": gc_clock.cpu,
        "sessions_max": ticker.probe_max,
    }
    if contender == "ours":
        from airflow_provider_integrations.hooks.http import CONFIGS

        result["lookups"] = CONFIGS.lookups.get("bench_poll", 0)
    return result


# -- parent side ------------------------------------------------------------------------------------


def server_counts(base: str, reset: bool = False) -> dict[str, int]:
    req = urllib.request.Request(f"{base}/_connections", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.load(r))


def run_child(
    contender: str, n: int, interval: float, polls: int, base: str, cap: float, flags: list[str]
) -> dict[str, Any]:
    """``measure()`` in a fresh process (``flags``: the harness options), plus the server's counts."""
    server_counts(base, reset=True)
    cmd = [sys.executable, __file__, "--child", contender, str(n), str(interval), str(polls), base, str(cap)]
    proc = subprocess.run([*cmd, *flags], capture_output=True, text=True, timeout=cap + 300, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{contender} child failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    counts = server_counts(base)
    result.update(connections=counts["connections"], requests=counts["requests"])
    result["cpu_us_per_poll"] = result["cpu_s"] / max(1, counts["requests"]) * 1e6
    return result


def start_server() -> tuple[subprocess.Popen[str], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_poll_server.py"), str(port)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            server_counts(base)
            return server, base
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the poll server did not start")


def parse_scenario(text: str) -> tuple[int, float, int]:
    n, interval, polls = text.split("x")
    return int(n), float(interval), int(polls)


COLUMNS = ("wall", "lag_ms", "rss_mb", "cpu_us_per_poll", "connections", "full_gcs")


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per contender; ``x_raw`` is the median of per-round ratios (rounds run back to back)."""
    out: dict[str, dict[str, Any]] = {}
    for name, rounds in runs.items():
        row: dict[str, Any] = {k: statistics.median(r[k] for r in rounds) for k in COLUMNS}
        row["completed"] = min(r["completed"] for r in rounds)
        row["sessions_max"] = max(r["sessions_max"] for r in rounds)
        row["lookups"] = max(r.get("lookups", 0) for r in rounds)
        if "raw" in runs:
            ratios = [r["wall"] / raw["wall"] for r, raw in zip(rounds, runs["raw"], strict=False)]
            row["x_raw"] = statistics.median(ratios)
        out[name] = row
    return out


def report(results: dict[str, dict[str, list[dict[str, Any]]]], markdown: bool) -> list[str]:
    """The table and the acceptance checks of issue 5."""
    header = (
        "N x interval x polls", "contender", "fired / N", "wall s", "x raw", "max loop lag ms",
        "RSS delta MB", "CPU µs/poll", "TCP connections", "full GCs",
    )  # fmt: skip
    widths = (14, 10, 16, 8, 7, 9, 9, 10, 10, 9)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    else:
        short = (
            "scenario",
            "contender",
            "fired/N",
            "wall s",
            "x raw",
            "lag ms",
            "RSS MB",
            "CPU µs",
            "TCP",
            "full GC",
        )
        lines = [_row(short, widths)]
    failures = []
    for scenario, runs in results.items():
        n = parse_scenario(scenario)[0]
        for name, r in summarize(runs).items():
            ratio = r.get("x_raw", float("nan"))
            cells = (
                scenario, name, f"{r['completed']:,} / {n:,}", f"{r['wall']:.1f}", f"{ratio:.2f}",
                f"{r['lag_ms']:.0f}", f"{r['rss_mb']:.0f}", f"{r['cpu_us_per_poll']:.0f}",
                f"{r['connections']:,.0f}", f"{r['full_gcs']:.0f}",
            )  # fmt: skip
            if markdown:
                lines.append("| " + " | ".join(cells) + " |")
            else:
                lines.append(_row(cells, widths))
            if name == "ours":
                failures += _misses(scenario, n, r, ratio)
    lines.append("")
    lines += [f"FAIL {f}" for f in failures] or ["PASS: every density target of issue 5 is met"]
    return lines


def _row(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    return "".join(
        c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _misses(scenario: str, n: int, r: dict[str, Any], ratio: float) -> list[str]:
    misses = []
    if r["completed"] != n:
        misses.append(f"{scenario}: only {r['completed']} of {n} triggers fired")
    if n in TARGETS and ratio > TARGETS[n]:
        misses.append(f"{scenario}: wall {ratio:.2f}x raw > {TARGETS[n]}x")
    if n >= 10000 and r["lag_ms"] > 250:
        misses.append(f"{scenario}: max loop lag {r['lag_ms']:.0f} ms > 250 ms")
    if n >= 10000 and r["rss_mb"] > 100:
        misses.append(f"{scenario}: RSS delta {r['rss_mb']:.0f} MB > 100 MB")
    if r["connections"] > POOL:
        misses.append(f"{scenario}: {r['connections']:.0f} TCP connections > pool {POOL}")
    if r["sessions_max"] != 1 or r["lookups"] != 1:
        misses.append(
            f"{scenario}: {r['sessions_max']} sessions, {r['lookups']} connection lookups (want 1, 1)"
        )
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", default=["1000x1x5", "2000x1x5", "10000x5x3"])
    parser.add_argument("--only", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians are reported")
    parser.add_argument("--official-cap", type=float, default=3.0, help="x the raw wall time (min 30 s)")
    parser.add_argument("--no-portal", action="store_true", help="skip greenback.ensure_portal()")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() the post-import heap")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--json", type=Path, help="also write every run's results here")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        contender, n, interval, polls, base, cap = args.child
        result = measure(
            contender,
            int(n),
            float(interval),
            int(polls),
            base,
            float(cap),
            not args.no_portal,
            args.gc_freeze,
        )
        print(MARKER + json.dumps(result), flush=True)
        return

    server, base = start_server()
    port = int(base.rsplit(":", 1)[1])
    os.environ["AIRFLOW_CONN_BENCH_POLL"] = json.dumps(
        {"conn_type": "integration_http", "host": "127.0.0.1", "port": port, "extra": {"scheme": "http"}}
    )
    os.environ["AIRFLOW_CONN_BENCH_OFFICIAL"] = f"http://127.0.0.1:{port}"
    flags = [f for f, on in (("--no-portal", args.no_portal), ("--gc-freeze", args.gc_freeze)) if on]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for _ in range(args.rounds):
            for scenario in args.scenarios:
                n, interval, polls = parse_scenario(scenario)
                runs = results.setdefault(scenario, {name: [] for name in args.only})
                for name in args.only:
                    raw_wall = runs["raw"][-1]["wall"] if runs.get("raw") else interval * polls + 10
                    cap = max(30.0, args.official_cap * raw_wall) if name == "official" else 600.0
                    print(f"{scenario} {name}...", file=sys.stderr, flush=True)
                    runs[name].append(run_child(name, n, interval, polls, base, cap, flags))
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    print("\n".join(report(results, args.markdown)))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
