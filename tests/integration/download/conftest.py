from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.connections.http_config import (
    BreakerConfig,
    HttpClientConfig,
    RetryPolicy,
    Timeouts,
)
from airflow_provider_integrations.sandbox.process import SandboxProcess

MakeConfig = Callable[..., HttpClientConfig]


@pytest.fixture
def make_config(sandbox: SandboxProcess) -> MakeConfig:
    def make(max_attempts: int = 3, **overrides: Any) -> HttpClientConfig:
        values: dict[str, Any] = {
            "base_url": sandbox.url,
            "name": "sandbox-download",
            "retry": RetryPolicy(max_attempts=max_attempts, base_delay=0.01, max_delay=0.05),
            "timeouts": Timeouts(connect=2, read=5, total=10),
            "breaker": BreakerConfig(failure_threshold=0),
        }
        values.update(overrides)
        return HttpClientConfig(**values)

    return make


@pytest.fixture
def key() -> str:
    """Keys the sandbox's per-file state (cuts, versions, stats) to one test."""
    return uuid.uuid4().hex


async def sandbox_json(sandbox: SandboxProcess, method: str, path: str, **params: Any) -> Any:
    async with aiohttp.ClientSession() as s, s.request(method, f"{sandbox.url}{path}", params=params) as r:
        assert r.status < 300, await r.text()
        return await r.json()
