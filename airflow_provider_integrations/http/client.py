"""The HTTP client: one aiohttp session per connection and event loop, with auth, retry, rate limit,
circuit breaker, timeouts and typed errors around every call."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
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


@dataclass(slots=True)
class Response:
    """A read response. Not frozen: a frozen dataclass costs each request another microsecond to build."""

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
        if idempotency_key:
            hdrs[self.config.retry.idempotency_header] = idempotency_key
        ct = client_timeout(timeout) if timeout is not None else self._timeout
        clock = self._loop_time
        attempt, waited, auth_retried = 0, 0.0, False
        # One flat loop: this is every request's path, and each extra coroutine level costs on every resume
        # (prepare() is the one shared with open() and websocket()).
        while True:
            attempt += 1
            out = await self.prepare(method, url, hdrs, body)
            timings = Timings()
            start = timings.start = clock()
            try:
                async with self.session.request(
                    method,
                    out.url,
                    data=body,
                    headers=out.headers or None,
                    timeout=ct,
                    trace_request_ctx=timings,
                ) as resp:
                    timings.ttfb = (clock() - start) * 1000
                    payload = await resp.read()
                    status, resp_headers = resp.status, resp.headers
            except Exception as exc:
                error = self._transport_error(exc, method, url)
            else:
                timings.total = (clock() - start) * 1000
                self._observe(method, url, status, resp_headers, timings)
                response = Response(method, url, status, resp_headers, payload, timings, attempt)
                if status == 401 and not auth_retried and self.auth.refresh_on_401(out):
                    auth_retried = True
                    attempt -= 1
                    continue
                if status < 400 or not raise_for_status:
                    return response
                classified = errors.classify_status(
                    status,
                    method=method,
                    url=response.url,
                    headers=resp_headers,
                    body=payload,
                    retry_on=self._retry_on,
                )
                if classified is None:
                    return response
                error = classified
            waited += await self._backoff(method, hdrs, error, attempt, waited)

    async def prepare(
        self, method: str, url: URL, headers: dict[str, str], body: bytes | None = None
    ) -> OutgoingRequest:
        """What every attempt of every kind of request passes: breaker, rate limit, then auth.

        Auth signs each attempt anew (HMAC timestamps, refreshed tokens) on a copy of ``headers``.
        """
        self.breaker.before_call()
        limiter = self.limiter
        if limiter.rate is not None or limiter.blocked:
            await limiter.acquire()
        if not self._authenticates:
            return OutgoingRequest(method, url, headers, body)
        out = OutgoingRequest(method, url, dict(headers), body)
        await self.auth.apply(out)
        return out

    async def open(
        self,
        method: str,
        path: str | URL = "",
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        accept_statuses: Collection[int] = (),
        **session_kwargs: Any,
    ) -> aiohttp.ClientResponse:
        """One attempt whose body the caller reads as it arrives (streams, downloads); release it after.

        Breaker, rate limit, auth (refreshed once on 401) and error classification are those of
        :meth:`request`; retrying is the caller's, since a stream or a download resumes where it stopped
        rather than repeating. Statuses >= 400 raise the classified :class:`.errors.HttpError` unless
        listed in ``accept_statuses`` (a download's 416).
        """
        url = path if isinstance(path, URL) else self.url_for(path)
        if params:
            url = url.update_query(params)
        hdrs = dict(headers) if headers else {}
        refreshed = False
        while True:
            out = await self.prepare(method, url, hdrs)
            try:
                resp = await self.session.request(
                    method,
                    out.url,
                    headers=out.headers or None,
                    timeout=timeout or self._timeout,
                    **session_kwargs,
                )
            except Exception as exc:
                raise self._transport_error(exc, method, url) from exc
            status = resp.status
            self._observe(method, url, status, resp.headers)
            if status < 400 or status in accept_statuses:
                return resp
            try:
                body = await resp.content.read(errors.EXCERPT_LIMIT + 1)
            except aiohttp.ClientError:
                body = b""
            finally:
                resp.close()
            if status == 401 and not refreshed and self.auth.refresh_on_401(out):
                refreshed = True
                continue
            raise self._status_error(method, url, status, resp.headers, body)

    async def websocket(
        self,
        path: str = "",
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        **ws_kwargs: Any,
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a WebSocket on the shared session, with the connection's breaker, rate limit and auth."""
        url = self.url_for(path)
        if params:
            url = url.update_query(params)
        hdrs = dict(headers) if headers else {}
        refreshed = False
        while True:
            out = await self.prepare("GET", url, hdrs)
            try:
                ws: aiohttp.ClientWebSocketResponse = await self.session.ws_connect(
                    out.url, headers=out.headers, **ws_kwargs
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401 and not refreshed and self.auth.refresh_on_401(out):
                    refreshed = True
                    continue
                self._observe("GET", url, exc.status, CIMultiDict(exc.headers or {}))
                raise self._status_error("GET", url, exc.status, exc.headers or {}, b"") from exc
            except Exception as exc:
                raise self._transport_error(exc, "GET", url) from exc
            self.breaker.record_success()
            return ws

    def _transport_error(self, exc: Exception, method: str, url: URL) -> errors.HttpError:
        error = errors.translate(exc, method, url)
        if error.retriable:
            self.breaker.record_failure()
        return error

    def _status_error(
        self, method: str, url: URL, status: int, headers: Mapping[str, str], body: bytes
    ) -> errors.HttpError:
        shown = errors.redact_url(url)
        return errors.classify_status(
            status, method=method, url=shown, headers=headers, body=body, retry_on=self._retry_on
        ) or errors.ClientRequestError(f"HTTP {status}", method=method, url=shown, status=status)

    def _observe(
        self,
        method: str,
        url: URL,
        status: int,
        headers: Mapping[str, str],
        timings: Timings | None = None,
    ) -> None:
        if status >= 500 or (status in self._retry_on and status != 429):
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        self.limiter.observe(headers)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%s)", method, errors.redact_url(url), status, timings or "streamed")

    async def _backoff(
        self, method: str, headers: dict[str, str], error: errors.HttpError, attempt: int, waited: float
    ) -> float:
        """Sleep before the next attempt and return the delay, or raise ``error`` when giving up."""
        policy = self.config.retry
        delay = next_delay(
            policy,
            attempt=attempt,
            waited=waited,
            error=error,
            repeatable=may_repeat(method, headers, policy, error),
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
        await asyncio.sleep(delay)
        return delay

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
