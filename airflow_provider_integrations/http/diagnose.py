"""Layered connection diagnosis: DNS, TCP, TLS, HTTP health path, authentication.

Each layer is timed; the first failing layer stops the walk and yields a one-line message with a
remediation hint, which is what the Airflow UI shows after **Test**.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import replace

from cryptography import x509
from yarl import URL

from airflow_provider_integrations.connections.http_config import BreakerConfig, HttpClientConfig, RetryPolicy
from airflow_provider_integrations.diagnosis import (
    Diagnosis,
    Failed,
    connect_tcp,
    reason,
    resolve,
)
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.http.tls import ssl_context


def _tcp_hint(exc: BaseException) -> str:
    return "check the Host and Port fields and that the service is running and reachable"


_TLS_HINTS = (
    ("self-signed", "set the CA bundle field to the issuing CA (PEM)"),
    ("unable to get local issuer", "set the CA bundle field to the issuing CA (PEM)"),
    ("expired", "the server certificate has expired: renew it on the server"),
    ("hostname mismatch", "the certificate does not name this host: fix the Host field or the certificate"),
    ("certificate required", "the server requires a client certificate: set the client certificate and key"),
    ("unknown ca", "the server rejected our client certificate: use one its CA issued"),
    ("protocol version", "the server does not offer the minimum TLS version: lower it or upgrade the server"),
)


def _tls_hint(reason: str) -> str:
    low = reason.lower()
    return next((hint for key, hint in _TLS_HINTS if key in low), "check the TLS fields of the connection")


def _http_hint(exc: errors.HttpError) -> str:
    reason = str(exc.args[0]).lower()
    if "tls" in reason or "ssl" in reason or "certificate" in reason:
        return _tls_hint(reason)
    if isinstance(exc, errors.RequestTimeout):
        return "the service is too slow: raise the read/total timeout fields or check its health"
    return "check that the service speaks HTTP(S) on this port and look at its logs"


async def diagnose(config: HttpClientConfig) -> Diagnosis:
    result = Diagnosis()
    url = URL(config.base_url)
    host, port, tls = (
        url.host or "",
        url.port or (443 if url.scheme == "https" else 80),
        url.scheme == "https",
    )
    timeout = config.timeouts.connect or 10.0

    try:
        address = await resolve(host, port, timeout, result)
        await connect_tcp(address, port, timeout, result, _tcp_hint)
        if tls:
            await _check_tls(config, address, host, port, timeout, result)
        await _check_http(config, result)
    except Failed:
        pass
    return result


async def _check_tls(
    config: HttpClientConfig, address: str, host: str, port: int, timeout: float, result: Diagnosis
) -> None:
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=ssl_context(config.tls), server_hostname=host), timeout
        )
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or exc.reason or str(exc)
        raise result.fail(
            "TLS", t0, f"TLS handshake failed: certificate verify failed ({why}): {_tls_hint(why)}"
        ) from None
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        why = reason(exc)
        raise result.fail("TLS", t0, f"TLS handshake failed: {why}: {_tls_hint(why)}") from None
    ssl_object = writer.get_extra_info("ssl_object")
    detail = ssl_object.version() if ssl_object else ""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    writer.close()
    with contextlib.suppress(ssl.SSLError, OSError):
        await writer.wait_closed()
    if der:
        cert = x509.load_der_x509_certificate(der)
        expires = cert.not_valid_after_utc
        days = (expires.timestamp() - time.time()) / 86400
        detail += f", {cert.subject.rfc4514_string()}, expires {expires:%Y-%m-%d} ({days:.0f} days)"
    result.passed("TLS", t0, detail)


async def _check_http(config: HttpClientConfig, result: Diagnosis) -> None:
    # One attempt, no breaker: the test must show the first answer, not a retried or short-circuited one.
    probe = replace(
        config,
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerConfig(failure_threshold=0),
        detailed_timings=True,
    )
    async with lease_client(probe) as client:
        await _probe(client, config.health_check_path, "HTTP", result)
        scheme = config.auth.scheme
        if scheme == "none":
            return
        if config.auth_check_path:
            await _probe(client, config.auth_check_path, "auth", result)
            result.layers[-1].detail = f"{scheme} accepted: {result.layers[-1].detail}"
        elif scheme == "oauth2_client_credentials":
            # The health call above fetched a token: the token endpoint accepted the client credentials.
            result.passed("auth", None, f"{scheme} token obtained")
        else:
            result.passed(
                "auth", None, f"{scheme} sent but not verified: set the auth-check path to verify it"
            )


async def _probe(client: HttpClient, path: str, layer: str, result: Diagnosis) -> None:
    scheme = client.config.auth.scheme
    t0 = time.perf_counter()
    try:
        response = await client.request("GET", path, raise_for_status=False)
    except errors.AuthenticationError as exc:
        message = f"auth {scheme} failed: {exc.args[0]}: check the login and secret fields"
        raise result.fail("auth", t0, message) from None
    except errors.HttpError as exc:
        raise result.fail(layer, t0, f"HTTP GET {path} failed: {exc.args[0]}: {_http_hint(exc)}") from None
    status = response.status
    if status in (401, 403):
        message = (
            f"auth {scheme} rejected: GET {path} returned {status}: check the login and secret fields "
            "(and the auth scheme)"
        )
        raise result.fail("auth", t0, message)
    if status >= 400:
        field_name = "Health-check path" if layer == "HTTP" else "Auth-check path"
        hint = (
            f"set the {field_name} field to an endpoint that exists"
            if status == 404
            else "the service answered with an error: check its health"
        )
        raise result.fail(layer, t0, f"HTTP GET {path} returned {status}: {hint}")
    result.passed(layer, t0, f"GET {path} {status}")
