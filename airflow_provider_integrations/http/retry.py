"""Retry decisions: pure functions of the policy, the attempt count and the error (no I/O)."""

from __future__ import annotations

import random
from collections.abc import Callable

from airflow_provider_integrations.connections.http_config import IDEMPOTENT_METHODS, RetryPolicy
from airflow_provider_integrations.http.errors import CircuitOpenError, HttpError, TransportError


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff for the wait after ``attempt`` (1-based), with AWS-style full jitter."""
    cap = min(policy.max_delay, policy.base_delay * (2.0 ** (attempt - 1)))
    return rand() * cap if policy.jitter else cap


def may_repeat(method: str, headers: dict[str, str], policy: RetryPolicy, error: HttpError) -> bool:
    """A request may be sent again if repeating it cannot apply it twice."""
    if method.upper() in IDEMPOTENT_METHODS or policy.idempotency_header in headers:
        return True
    # Nothing reached the server: DNS and connect failures are safe for any method.
    return isinstance(error, TransportError) and not error.sent


def next_delay(
    policy: RetryPolicy,
    *,
    attempt: int,
    waited: float,
    error: HttpError,
    repeatable: bool,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up and raise ``error``."""
    if not error.retriable or isinstance(error, CircuitOpenError):
        return None
    if attempt >= policy.max_attempts or not repeatable:
        return None
    delay = backoff_delay(policy, attempt, rand)
    if policy.respect_retry_after and error.retry_after is not None:
        # The server's word beats our backoff, even above max_delay; the budget still caps it.
        delay = max(delay, error.retry_after)
    if waited + delay > policy.budget:
        return None
    return delay
