"""Fixtures for the batch tests: a client config for the sandbox, unique keys, the sandbox's counters."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import (
    BreakerConfig,
    HttpClientConfig,
    RetryPolicy,
    Timeouts,
)
from airflow_provider_integrations.sandbox.process import SandboxProcess

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def fetch(url: str, method: str = "GET") -> Any:
    """Plain urllib: the sandbox's own bookkeeping must not go through the client under test."""
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as response:
        return json.load(response)


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A sandbox key private to this test, so counters never mix between tests."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def batch_stats(sandbox: SandboxProcess) -> Callable[..., dict[str, Any]]:
    def read(key: str, detail: bool = False) -> dict[str, Any]:
        suffix = "&detail=1" if detail else ""
        return dict(fetch(f"{sandbox.url}/batch/stats?key={key}{suffix}"))

    return read


@pytest.fixture
def make_config(sandbox: SandboxProcess) -> Callable[..., HttpClientConfig]:
    def make(**overrides: Any) -> HttpClientConfig:
        values: dict[str, Any] = {
            "base_url": sandbox.url,
            "name": "sandbox-batch",
            "retry": FAST_RETRY,
            "timeouts": Timeouts(connect=2, read=None, total=10),
            "breaker": BreakerConfig(failure_threshold=0),
        }
        values.update(overrides)
        return HttpClientConfig(**values)

    return make


def read_outcomes(path: Any) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f]
