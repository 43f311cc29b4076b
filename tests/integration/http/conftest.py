from __future__ import annotations

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


@pytest.fixture
def make_config(sandbox: SandboxProcess) -> Callable[..., HttpClientConfig]:
    def make(**overrides: Any) -> HttpClientConfig:
        values: dict[str, Any] = {
            "base_url": sandbox.url,
            "name": "sandbox",
            "retry": FAST_RETRY,
            "timeouts": Timeouts(connect=2, read=2, total=5),
            "breaker": BreakerConfig(failure_threshold=0),
        }
        values.update(overrides)
        return HttpClientConfig(**values)

    return make
