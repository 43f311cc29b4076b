"""Batch API: 100,000 items in batches of 500 at concurrency 8, against the sandbox's batch endpoint (a real
process) with 1% permanent and 5% transient per-item failures.

Contenders run alternately in the same process and the same run, several rounds each, each round on a
fresh sandbox key:

- ``raw``: a hand-written aiohttp loop with one shared session and 8 workers; it re-sends "retry" items at
  once and keeps counts in memory (no backoff, no files, no policy: the physical limit);
- ``ours``: :class:`~airflow_provider_integrations.http.batch.BatchRun` through the shared client, with
  item retries after a jittered backoff (``--retry-delay``), the JSONL outcome file and the fsync'd
  checkpoint, progress and the failure policy (``max_failed_ratio`` 2%).

After every run the sandbox's own counters are checked: **lost** = items without a final answer at the
partner (or, for ours, without exactly one line in the outcomes file), **duplicated** = items sent again
after their final answer. Two more checks run once, untimed: a policy below the failure rate (0.5%) must
stop the run early and leave every sent item with one outcome; and a run in a child process is SIGKILLed
after half of its batches were acknowledged, then resumed: no acknowledged batch may reach the partner
again and the outcome file must hold every item exactly once.

Run: ``.venv/bin/python bench/batch_api.py [--items 100000] [--batch-size 500] [--concurrency 8]
[--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_integrations.connections.http_config import (  # noqa: E402
    BreakerConfig,
    HttpClientConfig,
    RetryPolicy,
)
from airflow_provider_integrations.http.batch import BatchRun, BatchSettings, BatchSummary  # noqa: E402
from airflow_provider_integrations.http.batch_rules import FailurePolicy  # noqa: E402
from airflow_provider_integrations.http.batch_store import BatchStore  # noqa: E402
from airflow_provider_integrations.http.sessions import lease_client  # noqa: E402

PERMANENT, TRANSIENT = 0.01, 0.05


def make_items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"item-{i}", "sku": f"SKU-{i % 97}", "quantity": 1 + i % 9} for i in range(n)]


def fault_query(key: str) -> dict[str, str]:
    return {"key": key, "permanent": str(PERMANENT), "transient": str(TRANSIENT)}


def sandbox_stats(url: str, key: str, detail: bool = False, forget: bool = False) -> dict[str, Any]:
    suffix = "&detail=1" if detail else ""
    with urllib.request.urlopen(f"{url}/batch/stats?key={key}{suffix}", timeout=60) as r:
        stats: dict[str, Any] = json.load(r)
    if forget:  # the sandbox keeps per-item counters; free them between rounds
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/batch/stats?key={key}", method="DELETE")
        ).close()
    return stats


async def raw_loop(url: str, key: str, items: list[dict[str, Any]], size: int, concurrency: int) -> int:
    import aiohttp

    batches = [items[i : i + size] for i in range(0, len(items), size)]
    query, requests, position = fault_query(key), 0, 0
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal requests, position
            while position < len(batches):
                pending = batches[position]
                position += 1
                while pending:
                    async with session.post(f"{url}/batch", params=query, json={"items": pending}) as r:
                        doc = await r.json()
                    requests += 1
                    retry = {res["id"] for res in doc["results"] if res["status"] == "retry"}
                    pending = [item for item in pending if item["id"] in retry]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests


def config_for(url: str) -> HttpClientConfig:
    return HttpClientConfig(
        base_url=url,
        name="bench-batch",
        retry=RetryPolicy(base_delay=0.05, max_delay=1.0),
        breaker=BreakerConfig(failure_threshold=0),
    )


async def ours(
    url: str,
    key: str,
    items: list[dict[str, Any]],
    args: argparse.Namespace,
    state: Path,
    *,
    policy: FailurePolicy,
    on_commit: Callable[[int], None] | None = None,
) -> BatchSummary:
    settings = BatchSettings(
        endpoint="/batch",
        query=fault_query(key),
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        retry_base_delay=args.retry_delay,
        retry_max_delay=args.retry_delay * 8,
        idempotency_prefix=key,
    )
    store = BatchStore(state / "outcomes.jsonl", state / "checkpoint")
    async with lease_client(config_for(url)) as api:
        run = BatchRun(api, items, settings, store, policy=policy, on_commit=on_commit)
        return await run.run()


def outcome_ids(state: Path) -> Counter[str]:
    with (state / "outcomes.jsonl").open() as f:
        return Counter(json.loads(line)["id"] for line in f)


def check(url: str, key: str, n: int, summary: BatchSummary | None, state: Path | None) -> dict[str, int]:
    """Lost and duplicated items according to the partner (and, for ours, the outcomes file)."""
    stats = sandbox_stats(url, key, forget=True)
    finished = stats["ok_distinct"] + stats["rejected_distinct"]
    lost, duplicated = n - finished, stats["duplicates"]
    if summary is not None and state is not None:
        lines = outcome_ids(state)
        lost += n - len(lines)
        duplicated += sum(c - 1 for c in lines.values())
        assert summary["succeeded"] == stats["ok_distinct"], (summary, stats)
        assert summary["failed"] == stats["rejected_distinct"], (summary, stats)
    return {"lost": lost, "duplicated": duplicated, "requests": stats["requests"]}


def measure(name: str, url: str, items: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    key = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        state = Path(tmp)
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary: BatchSummary | None = None
        if name == "raw":
            asyncio.run(raw_loop(url, key, items, args.batch_size, args.concurrency))
        else:
            policy = FailurePolicy(max_failed_ratio=0.02)
            summary = asyncio.run(ours(url, key, items, args, state, policy=policy))
            assert not summary["policy_violated"] and summary["not_sent"] == 0, summary
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        result = check(url, key, len(items), summary, state if summary else None)
    return {
        "items_per_s": len(items) / wall,
        "wall_s": wall,
        "cpu_us_per_item": cpu / len(items) * 1e6,
        **result,
    }


def policy_check(url: str, items: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    key = f"bench-policy-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        policy = FailurePolicy(max_failed_ratio=0.005)
        summary = asyncio.run(ours(url, key, items, args, Path(tmp), policy=policy))
        lines = outcome_ids(Path(tmp))
        stats = sandbox_stats(url, key, forget=True)
    assert summary["policy_violated"] and summary["not_sent"] > 0, summary
    assert len(lines) == summary["total"] - summary["not_sent"] and set(lines.values()) == {1}
    assert stats["duplicates"] == 0 and stats["distinct_items"] == len(lines), stats
    return {k: summary[k] for k in ("total", "failed", "not_sent", "policy")}


def crash_check(url: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    key = f"bench-crash-{uuid.uuid4().hex[:8]}"
    batches = -(-n // args.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        cmd = [sys.executable, __file__, "--child", url, key, tmp, "--items", str(n)]
        cmd += ["--batch-size", str(args.batch_size), "--concurrency", str(args.concurrency)]
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        for _ in range(batches // 2):
            assert child.stdout.readline().startswith("acked"), "the child ended early"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        lines = (Path(tmp) / "checkpoint").read_text().split("\n")
        acked = {int(line) for line in lines[1:-1]}
        before = sandbox_stats(url, key, detail=True)
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
        summary = json.loads(done.stdout.splitlines()[-1])
        after = sandbox_stats(url, key, detail=True, forget=True)
        lines_by_id = outcome_ids(Path(tmp))
    resent = [
        b
        for b in acked
        if any(
            after["sends"][k] != before["sends"].get(k) for k in after["sends"] if k.startswith(f"{key}-{b}-")
        )
    ]
    assert not resent, f"acknowledged batches sent again: {sorted(resent)[:10]}"
    assert len(lines_by_id) == n and set(lines_by_id.values()) == {1}
    assert after["duplicates"] == 0 and summary["batches_resumed"] == len(acked)
    return {
        "acked_at_kill": len(acked),
        "batches": batches,
        "resent_acked": 0,
        "outcome_lines": len(lines_by_id),
    }


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("state", type=Path)
    parser.add_argument("--items", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--retry-delay", type=float, default=0.05)
    args = parser.parse_args(argv)
    summary = asyncio.run(
        ours(
            args.url,
            args.key,
            make_items(args.items),
            args,
            args.state,
            policy=FailurePolicy(max_failed_ratio=0.02),
            on_commit=lambda b: print(f"acked {b}", flush=True),
        )
    )
    print(json.dumps(summary), flush=True)


def run_bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    items = make_items(args.items)
    measure("ours", url, items[: args.items // 10], args)  # warm-up: imports, first connections
    measure("raw", url, items[: args.items // 10], args)
    rounds: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": []}
    for _ in range(args.rounds):
        for name, runs in rounds.items():
            runs.append(measure(name, url, items, args))
    results: dict[str, Any] = {
        name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()
    }
    ratios = [o["items_per_s"] / r["items_per_s"] for o, r in zip(rounds["ours"], rounds["raw"], strict=True)]
    results["ours"]["x_raw"] = statistics.median(ratios)
    results["ratios"] = ratios
    results["lost"] = sum(r["lost"] for runs in rounds.values() for r in runs)
    results["duplicated"] = sum(r["duplicated"] for runs in rounds.values() for r in runs)
    if args.checks:
        results["policy"] = policy_check(url, items, args)
        results["crash"] = crash_check(url, args.items, args)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--retry-delay", type=float, default=0.05, help="ours: item retry base delay (s)")
    parser.add_argument("--no-checks", dest="checks", action="store_false", help="skip policy and crash runs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from airflow_provider_integrations.sandbox.process import SandboxProcess

    with SandboxProcess() as sandbox:
        results = run_bench(args, sandbox.url)
    print(
        f"\n{args.items} items, batches of {args.batch_size}, concurrency {args.concurrency}, "
        f"{PERMANENT:.0%} permanent + {TRANSIENT:.0%} transient item failures; median of {args.rounds} rounds"
    )
    print(f"{'contender':<10}{'items/s':>10}{'x raw':>8}{'wall s':>8}{'CPU µs/item':>13}{'requests':>10}")
    for name in ("raw", "ours"):
        r = results[name]
        ratio = f"{r['x_raw']:.2f}" if "x_raw" in r else "-"
        print(
            f"{name:<10}{r['items_per_s']:>10.0f}{ratio:>8}{r['wall_s']:>8.2f}{r['cpu_us_per_item']:>13.1f}"
            f"{r['requests']:>10.0f}"
        )
    print(f"per-round ours/raw: {', '.join(f'{x:.2f}' for x in results['ratios'])}")
    print(f"lost items: {results['lost']}, duplicated items: {results['duplicated']} (all rounds, both)")
    if "policy" in results:
        print(f"policy check (max_failed_ratio 0.5%): {results['policy']}")
        print(f"crash check (SIGKILL after half the batches, then resume): {results['crash']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
