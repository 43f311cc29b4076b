"""Fixtures for the streaming core: the sandbox as a real process, PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import (
    BreakerConfig,
    HttpClientConfig,
    RetryPolicy,
    Timeouts,
)
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.streaming import StreamOptions
from tests.postgres.conftest import admin, pg_config, pool, schema, unique  # noqa: F401 (fixtures)

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
#: Reconnect at once after a drop, back off briefly after failures.
FAST = StreamOptions(backoff=FAST_RETRY, read_timeout=10.0)


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A sandbox stats key unique to this test."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_config(sandbox: SandboxProcess) -> Callable[..., HttpClientConfig]:
    def make(**overrides: Any) -> HttpClientConfig:
        values: dict[str, Any] = {
            "base_url": sandbox.url,
            "name": "sandbox",
            "retry": FAST_RETRY,
            "timeouts": Timeouts(connect=2, read=None, total=None),
            "breaker": BreakerConfig(failure_threshold=0),
        }
        values.update(overrides)
        return HttpClientConfig(**values)

    return make


@pytest.fixture
def http_config(make_config: Callable[..., HttpClientConfig]) -> HttpClientConfig:
    return make_config()


def stream_stats(sandbox: SandboxProcess, key: str) -> dict[str, Any]:
    """The sandbox's counters of the streams requested with ``key`` (events sent, drops, resumes)."""
    with urllib.request.urlopen(f"{sandbox.url}/streams/stats?key={key}", timeout=5) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def put_script(sandbox: SandboxProcess, name: str, body: bytes) -> None:
    request = urllib.request.Request(f"{sandbox.url}/streams/scripts/{name}", data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=5):
        pass


@pytest.fixture
async def pg_cleanup() -> AsyncIterator[None]:
    """Close the test loop's shared pools and LISTEN connections afterwards."""
    yield
    await close_loop_listeners()
    await close_loop_pools()
