"""In-memory state shared by every sandbox route module.

Everything lives in one object hung off the application so that a restart of the
process (or a fresh ``create_app``) gives a clean slate, and so that later route
modules (jobs, webhooks, streams) can add their own slice next to these.
"""

from __future__ import annotations

import secrets
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_TOKEN_TTL = 3600


@dataclass
class Counters:
    """Observable counters; ``POST /control/reset-stats`` replaces them wholesale."""

    total_requests: int = 0
    connections: int = 0
    tokens_issued: int = 0
    idempotency_keys_seen: int = 0
    ratelimit_accepted: int = 0
    ratelimit_rejected: int = 0
    requests_by_key: Counter[str] = field(default_factory=Counter)
    connections_by_key: Counter[str] = field(default_factory=Counter)
    ratelimit_accepted_by_key: Counter[str] = field(default_factory=Counter)
    ratelimit_rejected_by_key: Counter[str] = field(default_factory=Counter)


class ConnectionTracker:
    """Counts distinct TCP connections by transport identity.

    Peernames can be recycled by the OS, transports cannot, and weak references
    let closed connections be garbage collected instead of accumulating.
    """

    def __init__(self) -> None:
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()
        self._seen_by_key: dict[str, weakref.WeakSet[Any]] = {}

    def observe(self, transport: Any, key: str | None, counters: Counters) -> None:
        if transport is None:
            return
        if transport not in self._seen:
            self._seen.add(transport)
            counters.connections += 1
        if key is not None:
            per_key = self._seen_by_key.setdefault(key, weakref.WeakSet())
            if transport not in per_key:
                per_key.add(transport)
                counters.connections_by_key[key] += 1


@dataclass
class IssuedToken:
    client_id: str
    scope: str | None
    audience: str | None
    expires_at: float  # time.monotonic() based so wall-clock jumps do not matter


class TokenStore:
    """OAuth access tokens issued by ``/oauth/token``; expiry is enforced server-side."""

    # Expired tokens are kept (so a 401 can say "expired" rather than "unknown")
    # but pruned once the store grows, to bound memory in long benchmarks.
    _PRUNE_THRESHOLD = 10_000

    def __init__(self, ttl: int = DEFAULT_TOKEN_TTL) -> None:
        self.ttl = ttl
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, client_id: str, scope: str | None, audience: str | None) -> tuple[str, IssuedToken]:
        if len(self._tokens) >= self._PRUNE_THRESHOLD:
            now = time.monotonic()
            self._tokens = {t: info for t, info in self._tokens.items() if info.expires_at > now}
        token = secrets.token_urlsafe(32)
        info = IssuedToken(client_id, scope, audience, time.monotonic() + self.ttl)
        self._tokens[token] = info
        return token, info

    def lookup(self, token: str) -> tuple[IssuedToken | None, str]:
        """Return the token record and a reason; the record is None unless the token is valid."""
        info = self._tokens.get(token)
        if info is None:
            return None, "unknown or revoked token"
        if time.monotonic() >= info.expires_at:
            return None, "token expired"
        return info, "ok"

    def revoke_all(self) -> int:
        count = len(self._tokens)
        self._tokens.clear()
        return count


@dataclass
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]


@dataclass
class RateWindow:
    started: float
    count: int = 0


@dataclass
class FaultState:
    """Per-key progress of the stateful fault endpoints (keys are chosen by the client)."""

    flaky_attempts: Counter[str] = field(default_factory=Counter)
    reset_attempts: Counter[str] = field(default_factory=Counter)
    rate_windows: dict[str, RateWindow] = field(default_factory=dict)


@dataclass
class SandboxState:
    token_store: TokenStore = field(default_factory=TokenStore)
    counters: Counters = field(default_factory=Counters)
    tracker: ConnectionTracker = field(default_factory=ConnectionTracker)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)
    faults: FaultState = field(default_factory=FaultState)

    def record_request(self, transport: Any, key: str | None) -> None:
        self.counters.total_requests += 1
        if key is not None:
            self.counters.requests_by_key[key] += 1
        self.tracker.observe(transport, key, self.counters)

    def observe_connection(self, transport: Any) -> None:
        self.tracker.observe(transport, None, self.counters)

    def reset_counters(self) -> None:
        # The connection tracker is kept so live keep-alive connections are not
        # counted again after a reset: "connections" means "opened since reset".
        self.counters = Counters()


STATE_KEY = web.AppKey("sandbox_state", SandboxState)


def get_state(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]
