"""Layered connection diagnosis: DNS, TCP, TLS, HTTP health path, authentication.

Each layer is timed; the first failing layer stops the walk and yields a one-line message with a
remediation hint, which is what the Airflow UI shows after **Test**.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import time
from dataclasses import dataclass, field, replace

from cryptography import x509
from yarl import URL

from airflow_provider_integrations.connections.http_config import BreakerConfig, HttpClientConfig, RetryPolicy
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.http.tls import ssl_context

_TLS_HINTS = (
    ("self-signed", "set the CA bundle field to the issuing CA (PEM)"),
    ("unable to get local issuer", "set the CA bundle field to the issuing CA (PEM)"),
    ("expired", "the server certificate has expired: renew it on the server"),
    ("hostname mismatch", "the certificate does not name this host: fix the Host field or the certificate"),
    ("certificate required", "the server requires a client certificate: set the client certificate and key"),
    ("unknown ca", "the server rejected our client certificate: use one its CA issued"),
    ("protocol version", "the server does not offer the minimum TLS version: lower it or upgrade the server"),
)


@dataclass(slots=True)
class Layer:
    name: str
    ok: bool
    ms: float
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.name} {self.ms:.1f} ms ({self.detail})"
            if self.detail
            else f"{self.name} {self.ms:.1f} ms"
        )


@dataclass(slots=True)
class Diagnosis:
    layers: list[Layer] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def message(self) -> str:
        passed = " | ".join(str(layer) for layer in self.layers if layer.ok)
        if self.failure is None:
            return f"Connection OK: {passed}"
        return f"{self.failure}" + (f" [passed: {passed}]" if passed else "")

    def fail(self, layer: str, t0: float, message: str) -> _Failed:
        self.layers.append(Layer(layer, False, _ms(t0), ""))
        self.failure = message
        return _Failed(message)


class _Failed(Exception):
    pass


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError):
        # asyncio wraps refusals as "Connect call failed (...)"; the errno text is what people search for.
        return os.strerror(exc.errno) if exc.errno > 0 else (exc.strerror or str(exc))
    return str(getattr(exc, "reason", None) or exc)


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
        t0 = time.perf_counter()
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
            raise result.fail(
                "DNS", t0, f"DNS lookup failed for {host!r}: {reason}: check the Host field"
            ) from None
        address = str(infos[0][4][0])
        result.layers.append(Layer("DNS", True, _ms(t0), address))

        t0 = time.perf_counter()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
        except (OSError, TimeoutError) as exc:
            reason = _reason(exc)
            raise result.fail(
                "TCP",
                t0,
                f"TCP connect to {address}:{port} failed: {reason}: check the Host and Port fields "
                "and that the service is running and reachable",
            ) from None
        writer.close()
        await writer.wait_closed()
        result.layers.append(Layer("TCP", True, _ms(t0), f"{address}:{port}"))

        if tls:
            await _check_tls(config, address, host, port, timeout, result)
        await _check_http(config, result)
    except _Failed:
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
        reason = exc.verify_message or exc.reason or str(exc)
        raise result.fail(
            "TLS", t0, f"TLS handshake failed: certificate verify failed ({reason}): {_tls_hint(reason)}"
        ) from None
    except (ssl.SSLError, OSError, TimeoutError) as exc:
        reason = _reason(exc)
        raise result.fail("TLS", t0, f"TLS handshake failed: {reason}: {_tls_hint(reason)}") from None
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
    result.layers.append(Layer("TLS", True, _ms(t0), detail))


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
            result.layers.append(Layer("auth", True, 0.0, f"{scheme} token obtained"))
        else:
            result.layers.append(
                Layer(
                    "auth", True, 0.0, f"{scheme} sent but not verified: set the auth-check path to verify it"
                )
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
    result.layers.append(Layer(layer, True, _ms(t0), f"GET {path} {status}"))
