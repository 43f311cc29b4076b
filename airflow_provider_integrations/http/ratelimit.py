"""Client-side rate limit: a token bucket that also obeys the server's rate-limit headers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

# Values above this are Unix timestamps (GitHub style X-RateLimit-Reset), below it delta-seconds.
_EPOCH_THRESHOLD = 1_000_000_000


class TokenBucket:
    """``rate=None`` only applies server hints; otherwise ``rate`` tokens/s with ``burst`` capacity.

    Callers reserve a slot synchronously (the bucket may go negative, which queues later callers
    fairly behind earlier ones) and then sleep outside any lock.
    """

    def __init__(
        self, rate: float | None, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = float(max(1, burst))
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.waits = 0

    def reserve(self) -> float:
        """Take one token and return how many seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._blocked_until - now)
            if self.rate is not None:
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                self._tokens -= 1.0
                if self._tokens < 0:
                    wait = max(wait, -self._tokens / self.rate)
            if wait > 0:
                self.waits += 1
            return wait

    @property
    def blocked(self) -> bool:
        """Whether the server ever asked to pause (callers skip the bucket entirely while it did not)."""
        return self._blocked_until > 0

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adapt to ``RateLimit-Remaining``/``-Reset`` (IETF draft) or ``X-RateLimit-*`` headers."""
        remaining = headers.get("RateLimit-Remaining") or headers.get("X-RateLimit-Remaining")
        if remaining is None:
            return  # the common case: the API sends no rate-limit headers
        reset = headers.get("RateLimit-Reset") or headers.get("X-RateLimit-Reset")
        try:
            left = float(remaining)
            reset_s = float(reset) if reset is not None else None
        except ValueError:
            return
        with self._lock:
            now = self._clock()
            if reset_s is not None and reset_s > _EPOCH_THRESHOLD:
                reset_s = max(0.0, reset_s - time.time())
            if left <= 0 and reset_s is not None:
                self._blocked_until = max(self._blocked_until, now + reset_s)
            elif self.rate is not None:
                self._tokens = min(self._tokens, left)

    def snapshot(self) -> dict[str, float | None]:
        with self._lock:
            return {
                "rate": self.rate,
                "tokens": self._tokens,
                "blocked_for": max(0.0, self._blocked_until - self._clock()),
                "waits": self.waits,
            }
