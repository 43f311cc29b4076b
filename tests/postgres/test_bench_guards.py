"""Cheap guards on the PostgreSQL benchmarks (bench/pg_bulk_load.py, bench/pg_pool.py).

What does not depend on machine speed is asserted exactly: every contender stores the same table
(checksums are compared inside the benchmark), upserts report exact inserted/updated counts, and a pool
opens at most ``max_size`` sessions. Throughput ratios are asserted only loosely, to catch a gross
regression on a small, noisy run; the issue's thresholds are checked by running the benchmarks by hand
(results in bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.postgres.conftest import unique

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def test_bulk_load_contenders_agree_and_ours_keeps_up(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench("pg_bulk_load")
    monkeypatch.setattr(bench, "SCHEMA", unique("bench_guard"))
    monkeypatch.setattr(bench, "CHECKPOINT", False)
    for key, value in bench.hook_environment().items():
        monkeypatch.setenv(key, value)
    times = bench.run(rows=5000, rounds=3, only=bench.CONTENDERS)
    assert {name: len(runs) for name, runs in times.items()} == dict.fromkeys(bench.CONTENDERS, 3)

    def speedup(ours: str, peer: str) -> float:
        # Best round of each: a load of a few milliseconds is easily doubled by a neighbour's burst.
        return min(times[peer]) / min(times[ours])

    assert speedup("ours_insert", "raw_copy") >= 0.5
    assert speedup("ours_insert", "insert_rows") >= 1.5
    assert speedup("ours_upsert_empty", "hand_upsert_empty") >= 0.5
    assert speedup("ours_upsert_full", "hand_upsert_full") >= 0.5
    table = bench.report(3000, times)
    assert all(f"\n| {name} | " in table for name in bench.CONTENDERS)


def test_pool_beats_connect_per_query() -> None:
    bench = load_bench("pg_pool")
    results, direct = asyncio.run(bench.run(queries=400, concurrency=20, rounds=1))
    pooled, direct_runs = results["pooled"][0], results["connect_per_query"][0]
    assert pooled["connections"] <= 10  # the default max_size, however many workers
    assert direct_runs["connections"] == 400 and 1 <= direct <= 20
    assert pooled["qps"] >= 5 * direct_runs["qps"]
    assert "pooled / connect_per_query" in bench.report(400, 20, direct, results)
