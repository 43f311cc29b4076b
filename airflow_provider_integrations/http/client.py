"""The HTTP client: one aiohttp session per connection and event loop, with auth, retry, rate limit,
circuit breaker, timeouts and typed errors around every call."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from airflow_provider_integrations.connections.http_config import HttpClientConfig, Timeouts
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.auth import OutgoingRequest, basic_authorization, build_auth
from airflow_provider_integrations.http.breaker import CircuitBreaker
from airflow_provider_integrations.http.pagination import PageRequest, Paginator
from airflow_provider_integrations.http.ratelimit import TokenBucket
from airflow_provider_integrations.http.retry import may_repeat, next_delay
from airflow_provider_integrations.http.tracing import Timings

log = logging.getLogger(__name__)

Params = Mapping[str, str | int | float] | None


@dataclass(frozen=True, slots=True)
class Response:
    method: str
    raw_url: URL
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    timings: Timings
    attempts: int

    @property
    def url(self) -> str:
        """The URL with credentials and secret query values removed (safe for logs and errors)."""
        return errors.redact_url(self.raw_url)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.body)
        except ValueError as exc:
            raise errors.ResponseContractError(
                f"response is not valid JSON: {exc}",
                method=self.method,
                url=self.url,
                status=self.status,
                excerpt=errors.excerpt_of(self.body),
            ) from None


def client_timeout(t: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect, sock_read=t.read)


class HttpClient:
    """Sends requests for one connection; obtain it from :mod:`.sessions`, never per request."""

    def __init__(
        self,
        config: HttpClientConfig,
        session: aiohttp.ClientSession,
        *,
        breaker: CircuitBreaker,
        limiter: TokenBucket,
    ) -> None:
        self.config = config
        self.session = session
        self.breaker = breaker
        self.limiter = limiter
        self.auth = build_auth(config.auth, self._fetch_token)
        self._base = config.base_url.rstrip("/")
        self._origin = URL(self._base).origin()
        self._timeout = client_timeout(config.timeouts)
        self._retry_on = config.retry.retry_on_statuses
        self._urls: dict[str, URL] = {}
        self._authenticates = config.auth.scheme != "none"
        self._loop_time = asyncio.get_running_loop().time

    def url_for(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._build_url(path)
            if len(self._urls) < 512:  # endpoints repeat; ad-hoc URLs (Link headers) must not grow it
                self._urls[path] = url
        return url

    def _build_url(self, path: str) -> URL:
        if "://" in path:
            url = URL(path)
            # Credentials must not follow a link to another origin (a hostile or buggy Link header).
            if url.origin() != self._origin:
                raise errors.ClientRequestError(
                    f"refusing to send credentials of {self.config.name!r} to another origin",
                    url=errors.redact_url(url),
                )
            return url
        return URL(f"{self._base}/{path.lstrip('/')}" if path else self._base, encoded="%" in path)

    async def request(
        self,
        method: str,
        path: str = "",
        *,
        params: Params = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeouts | None = None,
        idempotency_key: str | None = None,
        raise_for_status: bool = True,
    ) -> Response:
        method = method.upper()
        url = self.url_for(path)
        if params:
            url = url.update_query(params)
        hdrs = dict(headers) if headers else {}
        body: bytes | None
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            hdrs.setdefault("Content-Type", "application/json")
        else:
            body = data.encode() if isinstance(data, str) else data
        policy = self.config.retry
        if idempotency_key:
            hdrs[policy.idempotency_header] = idempotency_key
        ct = client_timeout(timeout) if timeout is not None else self._timeout
        attempt, waited, auth_retried = 0, 0.0, False
        while True:
            attempt += 1
            try:
                response, sent = await self._attempt(method, url, hdrs, body, ct, attempt)
                if response.status == 401 and not auth_retried and self.auth.refresh_on_401(sent):
                    auth_retried = True
                    attempt -= 1
                    continue
                if response.status < 400 or not raise_for_status:
                    return response
                error = errors.classify_status(
                    response.status,
                    method=method,
                    url=response.url,
                    headers=response.headers,
                    body=response.body,
                    retry_on=self._retry_on,
                )
                if error is None:
                    return response
            except errors.HttpError as exc:
                error = exc
            delay = next_delay(
                policy,
                attempt=attempt,
                waited=waited,
                error=error,
                repeatable=may_repeat(method, hdrs, policy, error),
            )
            if delay is None:
                raise error
            log.warning(
                "%s %s: %s; retrying in %.2f s (attempt %d of %d)",
                method,
                error.url,
                error.args[0],
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            waited += delay
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        attempt: int,
    ) -> tuple[Response, OutgoingRequest]:
        self.breaker.before_call()
        limiter = self.limiter
        if limiter.rate is not None or limiter.blocked:
            await limiter.acquire()
        out = OutgoingRequest(method, url, dict(headers), body)
        if self._authenticates:
            await self.auth.apply(out)
        timings = Timings()
        clock = self._loop_time
        start = timings.start = clock()
        try:
            async with self.session.request(
                method,
                out.url,
                data=body,
                headers=out.headers or None,
                timeout=timeout,
                trace_request_ctx=timings,
            ) as resp:
                timings.ttfb = (clock() - start) * 1000
                payload = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except Exception as exc:
            error = errors.translate(exc, method, url)
            if error.retriable:
                self.breaker.record_failure()
            raise error from exc
        timings.total = (clock() - start) * 1000
        if status >= 500 or (status in self._retry_on and status != 429):
            self.breaker.record_failure()
        elif self.breaker.enabled:
            self.breaker.record_success()
        limiter.observe(resp_headers)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%s)", method, errors.redact_url(url), status, timings)
        return Response(method, url, status, resp_headers, payload, timings, attempt), out

    async def _fetch_token(self) -> tuple[str, float]:
        """OAuth2 client-credentials grant, sent outside the auth strategy and the retry loop."""
        a = self.config.auth
        # Trusted connection config, often another origin (an identity provider): no origin check here.
        url = (
            URL(a.oauth2_token_url)
            if a.oauth2_token_url and "://" in a.oauth2_token_url
            else self.url_for(a.oauth2_token_url or "")
        )
        form = {"grant_type": "client_credentials"}
        if a.oauth2_scopes:
            form["scope"] = " ".join(a.oauth2_scopes)
        if a.oauth2_audience:
            form["audience"] = a.oauth2_audience
        headers = {}
        if a.oauth2_client_auth == "client_secret_basic":
            headers["Authorization"] = basic_authorization(a.login or "", a.secret or "")
        else:
            form |= {"client_id": a.login or "", "client_secret": a.secret or ""}
        shown = errors.redact_url(url)
        try:
            async with self.session.post(url, data=form, headers=headers, timeout=self._timeout) as resp:
                payload = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except Exception as exc:
            raise errors.translate(exc, "POST", url) from exc
        if status in (400, 401, 403):
            raise errors.AuthenticationError(
                f"OAuth2 token request refused: HTTP {status} {_oauth_error(payload)}",
                method="POST",
                url=shown,
                status=status,
                excerpt=errors.excerpt_of(payload),
            )
        error = errors.classify_status(
            status, method="POST", url=shown, headers=resp_headers, body=payload, retry_on=self._retry_on
        )
        if error is not None:
            raise error
        try:
            doc = jsonlib.loads(payload)
            return str(doc["access_token"]), float(doc.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.AuthenticationError(
                f"OAuth2 token response has no access_token: {type(exc).__name__}", method="POST", url=shown
            ) from None

    async def paginate(
        self,
        paginator: Paginator,
        path: str = "",
        *,
        method: str = "GET",
        params: Params = None,
        **kwargs: Any,
    ) -> AsyncIterator[Response]:
        """Yield each page; the paginator decides the next request and detects loops."""
        page: PageRequest | None = paginator.first(path, dict(params or {}))
        while page is not None:
            response = await self.request(method, page.path, params=page.params, **kwargs)
            yield response
            page = paginator.advance(page, response)

    async def close(self) -> None:
        await self.session.close()


def _oauth_error(payload: bytes) -> str:
    try:
        doc = jsonlib.loads(payload)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        return " ".join(str(doc[k]) for k in ("error", "error_description") if doc.get(k))
    return ""
