"""Cheap guards on the streaming benchmark (bench/streaming.py): memory under a producer burst is
asserted firmly (it does not depend on machine speed); throughput ratios only loosely, to catch a
gross regression such as a queue operation per event.

The benchmark itself, with the issue's thresholds (0.7x raw per format, 0.5x for LISTEN/NOTIFY), is
run by hand and recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

from airflow_provider_integrations.sandbox.process import SandboxProcess

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_streaming", BENCH / "streaming.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_memory_stays_bounded_under_a_producer_burst(sandbox: SandboxProcess) -> None:
    bench = load_bench()
    key = f"guard-burst-{uuid.uuid4().hex[:6]}"
    result = bench.run_child("burst", "ours", sandbox.url, "20000", key)
    assert result["peak_rss_mb"] < 40, result
    backlog = bench.sent_events(sandbox.url, key) - 20_000
    assert backlog < 20_000, f"{backlog} events sent but not consumed: the server was not held back"


def test_sources_keep_up_with_raw_loops(sandbox: SandboxProcess) -> None:
    bench = load_bench()
    only = {f"{side}_{fmt}" for side in ("raw", "ours") for fmt in ("sse", "ndjson", "ws", "notify")}
    summary = bench.run(sandbox.url, 40_000, 200, 3, list(bench.FORMATS), only)
    ratios = {name: r["x_raw"] for name, r in summary.items() if name.startswith("ours")}
    # Measured 0.73-1.1x (0.56x for NOTIFY) in bench/RESULTS.md; a busy CI machine is noisy.
    for name, ratio in ratios.items():
        assert ratio >= (0.25 if name == "ours_notify" else 0.4), ratios
