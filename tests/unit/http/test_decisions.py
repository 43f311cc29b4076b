"""Pure decision logic: retry, Retry-After, status classification, breaker, rate limit. No I/O."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from multidict import CIMultiDict

from airflow_provider_integrations.connections.http_config import RetryPolicy
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.breaker import CircuitBreaker
from airflow_provider_integrations.http.ratelimit import TokenBucket
from airflow_provider_integrations.http.retry import backoff_delay, may_repeat, next_delay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def classify(status: int, headers: dict[str, str] | None = None) -> errors.HttpError | None:
    return errors.classify_status(
        status,
        method="GET",
        url="https://api/x",
        headers=CIMultiDict(headers or {}),
        body=b'{"error": "boom"}',
        retry_on=RetryPolicy().retry_on_statuses,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (304, None),
        (400, errors.ClientRequestError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
        (404, errors.NotFoundError),
        (422, errors.ClientRequestError),
        (429, errors.RateLimitedError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (501, errors.FatalError),
    ],
)
def test_classify_status(status: int, kind: type[errors.HttpError] | None) -> None:
    err = classify(status)
    if kind is None:
        assert err is None
    else:
        assert type(err) is kind
        assert err.status == status
        assert err.excerpt == '{"error": "boom"}'


def test_403_is_fatal_and_501_not_retried() -> None:
    assert not classify(403).retriable  # type: ignore[union-attr]
    assert not classify(501).retriable  # type: ignore[union-attr]
    assert classify(503).retriable  # type: ignore[union-attr]


def test_retry_after_seconds_and_http_date() -> None:
    assert errors.parse_retry_after("7") == 7.0
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    parsed = errors.parse_retry_after(format_datetime(when, usegmt=True))
    assert parsed is not None and 28 <= parsed <= 30
    assert errors.parse_retry_after("soon") is None
    assert classify(429, {"Retry-After": "3"}).retry_after == 3.0  # type: ignore[union-attr]


def test_excerpt_is_bounded() -> None:
    assert len(errors.excerpt_of(b"x" * 5000)) == errors.EXCERPT_LIMIT + 1


def test_redact_url_strips_credentials_and_secret_params() -> None:
    shown = errors.redact_url("https://u:p@api.example.com/x?api_key=abc&page=2&token=t")
    assert "abc" not in shown and "u:p" not in shown and "token=***" in shown and "page=2" in shown


def test_backoff_grows_and_caps() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=False)
    assert [backoff_delay(policy, a) for a in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=True)
    assert backoff_delay(jittered, 3, rand=lambda: 0.5) == 2.0


def test_next_delay_respects_attempts_budget_and_retry_after() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, jitter=False, budget=10.0)
    server = errors.ServerError("x")
    assert next_delay(policy, attempt=1, waited=0, error=server, repeatable=True) == 1.0
    assert next_delay(policy, attempt=3, waited=0, error=server, repeatable=True) is None
    limited = errors.RateLimitedError("x", retry_after=6.0)
    assert next_delay(policy, attempt=1, waited=0, error=limited, repeatable=True) == 6.0
    assert next_delay(policy, attempt=1, waited=5.0, error=limited, repeatable=True) is None  # over budget
    ignoring = RetryPolicy(base_delay=1.0, jitter=False, respect_retry_after=False)
    assert next_delay(ignoring, attempt=1, waited=0, error=limited, repeatable=True) == 1.0
    assert next_delay(policy, attempt=1, waited=0, error=errors.NotFoundError("x"), repeatable=True) is None
    assert (
        next_delay(policy, attempt=1, waited=0, error=errors.CircuitOpenError("x"), repeatable=True) is None
    )


def test_non_idempotent_methods_repeat_only_with_key_or_unsent() -> None:
    policy = RetryPolicy()
    sent = errors.ServerError("x")
    assert may_repeat("GET", {}, policy, sent)
    assert not may_repeat("POST", {}, policy, sent)
    assert may_repeat("POST", {"Idempotency-Key": "k"}, policy, sent)
    assert may_repeat("POST", {}, policy, errors.TransportError("refused", sent=False))
    assert not may_repeat("PATCH", {}, policy, errors.TransportError("reset", sent=True))


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("api", failure_threshold=3, reset_timeout=10, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "open"
    with pytest.raises(errors.CircuitOpenError) as info:
        breaker.before_call()
    assert info.value.retry_after == 10
    clock.now += 10
    assert breaker.state == "half_open"
    breaker.before_call()  # the single probe
    with pytest.raises(errors.CircuitOpenError):
        breaker.before_call()  # a second caller during the probe
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 10
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"
    snap = breaker.snapshot()
    assert snap["times_opened"] == 2 and snap["rejected_calls"] == 2 and snap["consecutive_failures"] == 0


def test_breaker_disabled_never_opens() -> None:
    breaker = CircuitBreaker("api", failure_threshold=0, reset_timeout=10)
    for _ in range(100):
        breaker.record_failure()
        breaker.before_call()
    assert breaker.state == "closed"


def test_token_bucket_spaces_requests() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0, 0, 0.1, 0.2])
    clock.now += 1
    assert bucket.reserve() == 0


def test_token_bucket_obeys_server_headers() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=None, clock=clock)
    assert bucket.reserve() == 0
    bucket.observe(CIMultiDict({"RateLimit-Remaining": "0", "RateLimit-Reset": "2"}))
    assert bucket.reserve() == pytest.approx(2.0)
    epoch_reset = str(int(time.time()) + 5)
    bucket2 = TokenBucket(rate=None, clock=clock)
    bucket2.observe(CIMultiDict({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epoch_reset}))
    assert 3.5 <= bucket2.reserve() <= 5.0
    bucket3 = TokenBucket(rate=100, burst=50, clock=clock)
    bucket3.observe(CIMultiDict({"RateLimit-Remaining": "1", "RateLimit-Reset": "1"}))
    assert bucket3.reserve() == 0 and bucket3.reserve() > 0
