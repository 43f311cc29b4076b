"""Circuit breaker per connection: closed -> open after N failures -> half-open probe -> closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from airflow_provider_integrations.http.errors import CircuitOpenError

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Counts consecutive failed attempts (5xx, transport errors, timeouts) of one connection.

    While open, calls fail fast with :class:`CircuitOpenError` whose ``retry_after`` says when the
    half-open probe will be allowed; exactly one probe runs in half-open state.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int,
        reset_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.enabled = failure_threshold > 0
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.times_opened = 0
        self.rejected = 0

    @property
    def state(self) -> State:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_timeout:
            self._state = "half_open"
            self._probe_in_flight = False
        return self._state

    def before_call(self) -> None:
        if not self.enabled or self._state == "closed":
            return  # lock-free: reading one attribute is atomic, and closed needs no transition
        with self._lock:
            state = self._current_state()
            if state == "closed":
                return
            if state == "half_open" and not self._probe_in_flight:
                self._probe_in_flight = True
                return
            self.rejected += 1
            retry_in = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpenError(
            f"circuit breaker of connection {self.name!r} is {state}: "
            f"{self._failures} consecutive failures; next probe in {retry_in:.1f} s",
            retry_after=retry_in,
        )

    def record_success(self) -> None:
        if not self.enabled or (self._state == "closed" and not self._failures):
            return
        with self._lock:
            self._state = "closed"
            self._failures = 0
            self._probe_in_flight = False

    def record_failure(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._failures += 1
            if self._state == "half_open" or self._failures >= self.failure_threshold:
                if self._state != "open":
                    self.times_opened += 1
                self._state = "open"
                self._opened_at = self._clock()
                self._probe_in_flight = False

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            state = self._current_state()
            return {
                "name": self.name,
                "state": state,
                "consecutive_failures": self._failures,
                "times_opened": self.times_opened,
                "rejected_calls": self.rejected,
                "retry_in": (
                    max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
                    if state == "open"
                    else 0.0
                ),
            }
