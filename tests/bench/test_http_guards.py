"""Cheap guards on the HTTP benchmark (bench/http_throughput.py): the properties that do not depend on
machine speed are asserted exactly; the throughput ratio only loosely, to catch a gross regression.

The benchmark itself, with the issue's thresholds and the official provider as peer, is run by hand
(``make bench``) and recorded in bench/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("http_throughput", BENCH / "http_throughput.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_server(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, str]]:
    bench = load_bench()
    port = bench.free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "_server.py"), str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    base = f"http://127.0.0.1:{port}"
    for _ in range(50):
        try:
            bench.server_connections(base, reset=True)
            break
        except OSError:
            time.sleep(0.1)
    conn = {"conn_type": "integration_http", "host": "127.0.0.1", "port": port, "extra": {"scheme": "http"}}
    monkeypatch_module.setenv("AIRFLOW_CONN_BENCH_OURS", json.dumps(conn))
    try:
        yield bench, base
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_pooled_connections_no_cyclic_garbage_one_lookup(bench_server: tuple[ModuleType, str]) -> None:
    from airflow_provider_integrations.hooks.http import CONFIGS

    bench, base = bench_server
    CONFIGS.invalidate("bench_ours")
    before = CONFIGS.lookups.get("bench_ours", 0)
    result = bench.measure("ours", base, 2000, 50)
    assert result["connections"] <= 50, "TCP connections opened <= concurrency"
    assert result["garbage_per_req"] == 0, "no reference cycles per request"
    assert CONFIGS.lookups["bench_ours"] - before == 1, "one connection lookup per connection id"


def test_throughput_is_not_grossly_below_raw_aiohttp(bench_server: tuple[ModuleType, str]) -> None:
    bench, base = bench_server
    ratios = []
    for _ in range(3):
        raw = bench.measure("raw", base, 2000, 50)["rps"]
        ours = bench.measure("ours", base, 2000, 50)["rps"]
        ratios.append(ours / raw)
    # The bar is 0.8x (measured 0.88, bench/RESULTS.md); a CI machine running other jobs is noisy,
    # so this guard only catches a gross regression such as a session per request.
    assert sorted(ratios)[1] >= 0.5, ratios
