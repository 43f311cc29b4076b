"""Authentication strategies: one small object per scheme, chosen once per connection.

A strategy edits an outgoing :class:`OutgoingRequest` (headers, query) just before each attempt, so a
retried request is signed again with a fresh timestamp. Only OAuth2 does I/O, through the token
fetcher the client hands it; everything else is pure and unit-tested without a server.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from yarl import URL

from airflow_provider_integrations.connections.http_config import AuthConfig


@dataclass(slots=True)
class OutgoingRequest:
    method: str
    url: URL
    headers: dict[str, str]
    body: bytes | None = None
    # Set by strategies whose credentials can be refreshed, to recognise a stale one on 401.
    credential: str | None = field(default=None, repr=False)


class Auth:
    """No authentication; the base of every strategy."""

    scheme = "none"

    async def apply(self, request: OutgoingRequest) -> None:
        return None

    def refresh_on_401(self, request: OutgoingRequest) -> bool:
        """Forget the credential used by ``request``; ``True`` if one more attempt may succeed."""
        return False


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value of RFC 7617 basic auth (also used for OAuth2 client_secret_basic)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class BasicAuth(Auth):
    scheme = "basic"

    def __init__(self, username: str, password: str) -> None:
        self._header = basic_authorization(username, password)

    async def apply(self, request: OutgoingRequest) -> None:
        request.headers["Authorization"] = self._header


class BearerAuth(Auth):
    scheme = "bearer"

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    async def apply(self, request: OutgoingRequest) -> None:
        request.headers["Authorization"] = self._header


class ApiKeyAuth(Auth):
    scheme = "api_key"

    def __init__(self, key: str, name: str, where: str) -> None:
        self._key, self._name, self._in_query = key, name, where == "query"

    async def apply(self, request: OutgoingRequest) -> None:
        if self._in_query:
            request.url = request.url.update_query({self._name: self._key})
        else:
            request.headers[self._name] = self._key


class HmacAuth(Auth):
    """Signs ``METHOD\\npath?query\\ntimestamp\\nsha256(body)`` with the shared secret."""

    scheme = "hmac"

    def __init__(
        self, key_id: str, secret: str, algorithm: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._key_id, self._secret, self._algorithm = key_id, secret.encode(), algorithm
        self._clock = clock

    def signature(self, method: str, path_qs: str, timestamp: int, body: bytes | None) -> str:
        body_hash = hashlib.sha256(body or b"").hexdigest()
        message = f"{method.upper()}\n{path_qs}\n{timestamp}\n{body_hash}".encode()
        return hmac.new(self._secret, message, self._algorithm).hexdigest()

    async def apply(self, request: OutgoingRequest) -> None:
        ts = int(self._clock())
        sig = self.signature(request.method, request.url.raw_path_qs, ts, request.body)
        request.headers["X-Key-Id"] = self._key_id
        request.headers["X-Timestamp"] = str(ts)
        request.headers["X-Signature"] = f"{self._algorithm}={sig}"


TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]


class OAuth2ClientCredentials(Auth):
    """Caches the access token and refreshes it under a lock shortly before it expires, and once on 401.

    ``fetch`` returns ``(access_token, expires_in_seconds)``; the client implements it with a plain
    POST that bypasses this strategy, so a refresh never recurses.
    """

    scheme = "oauth2_client_credentials"

    def __init__(self, fetch: TokenFetcher, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    async def token(self) -> str:
        if not self._valid():
            async with self._lock:
                # Another caller may have refreshed while we waited for the lock.
                if not self._valid():
                    token, lifetime = await self._fetch()
                    self.fetches += 1
                    # Refresh early: 10% of the lifetime, at most 60 s, so no request carries a dying token.
                    self._token = token
                    self._expires_at = self._clock() + lifetime - min(60.0, lifetime * 0.1)
        assert self._token is not None
        return self._token

    async def apply(self, request: OutgoingRequest) -> None:
        token = await self.token()
        request.credential = token
        request.headers["Authorization"] = f"Bearer {token}"

    def refresh_on_401(self, request: OutgoingRequest) -> bool:
        if request.credential is not None and request.credential == self._token:
            self._token = None
        return True


def build_auth(config: AuthConfig, fetch_token: TokenFetcher | None = None) -> Auth:
    """Choose the strategy named by the connection; the parser has already checked required fields."""
    secret = config.secret or ""
    if config.scheme == "basic":
        return BasicAuth(config.login or "", secret)
    if config.scheme == "bearer":
        return BearerAuth(secret)
    if config.scheme == "api_key":
        return ApiKeyAuth(secret, config.api_key_name, config.api_key_in)
    if config.scheme == "hmac":
        return HmacAuth(config.login or "", secret, config.hmac_algorithm)
    if config.scheme == "oauth2_client_credentials":
        if fetch_token is None:
            raise ValueError("OAuth2 client credentials need a token fetcher")
        return OAuth2ClientCredentials(fetch_token)
    return Auth()
