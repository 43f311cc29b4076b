"""Build an :class:`HttpClientConfig` from the fields of an ``integration_http`` connection.

Airflow-free: the hook passes the connection's plain attributes. :func:`.schema.validate_extras`
checks each extra on its own; this module applies the rules that span several fields (auth needs,
host-as-URL compatibility with the official ``http`` provider, TLS consistency) and normalises PEM text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from airflow_provider_integrations.connections.http_config import (
    AuthConfig,
    BreakerConfig,
    HttpClientConfig,
    RateLimit,
    RetryPolicy,
    Timeouts,
    TlsConfig,
)
from airflow_provider_integrations.connections.schema import validate_extras
from airflow_provider_integrations.exceptions import ConnectionConfigError

__all__ = ["parse_http_connection"]

# What the Password field holds for each scheme, for error messages.
_SECRET_ROLE = {
    "basic": "the password",
    "bearer": "the bearer token",
    "api_key": "the API key",
    "oauth2_client_credentials": "the OAuth2 client secret",
    "hmac": "the HMAC signing secret",
}
_LOGIN_ROLE = {
    "basic": "the username",
    "oauth2_client_credentials": "the OAuth2 client ID",
    "hmac": "the HMAC key ID",
}
_Fail = Callable[..., ConnectionConfigError]
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HOSTNAME = re.compile(r"[A-Za-z0-9_.~%-]+|[0-9A-Fa-f:.%]*:[0-9A-Fa-f:.%]*")


def parse_http_connection(
    *,
    conn_id: str | None,
    host: str | None,
    port: int | str | None,
    schema: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | str | None,
) -> HttpClientConfig:
    """Validate a connection and return its frozen client config.

    Raises :class:`ConnectionConfigError` naming the offending field (never a secret's value).
    """
    raw = _load_extra(extra, conn_id)
    opts = validate_extras(raw, conn_id=conn_id)

    def fail(path: str, expected: str, **kwargs: Any) -> ConnectionConfigError:
        return ConnectionConfigError(path, expected, conn_id=conn_id, **kwargs)

    base_url = _base_url(host, port, schema, opts["scheme"], fail)
    auth = _auth(opts, _clean(login), _clean_secret(password, fail), base_url, fail)
    tls = _tls(opts, fail)
    if opts["retry_base_delay"] > opts["retry_max_delay"]:
        raise fail(
            "$.retry_base_delay",
            f"a number <= $.retry_max_delay ({opts['retry_max_delay']})",
            value=opts["retry_base_delay"],
        )
    return HttpClientConfig(
        base_url=base_url,
        auth=auth,
        headers=_headers(opts, fail),
        timeouts=Timeouts(
            connect=float(opts["connect_timeout"]),
            read=None if opts["read_timeout"] is None else float(opts["read_timeout"]),
            total=float(opts["total_timeout"]),
        ),
        retry=RetryPolicy(
            max_attempts=opts["retry_max_attempts"],
            base_delay=float(opts["retry_base_delay"]),
            max_delay=float(opts["retry_max_delay"]),
            jitter=opts["retry_jitter"],
            retry_on_statuses=frozenset(opts["retry_on_statuses"]),
            respect_retry_after=opts["retry_respect_retry_after"],
            budget=float(opts["retry_budget_seconds"]),
            idempotency_header=opts["idempotency_header"],
        ),
        rate_limit=RateLimit(per_second=opts["rate_limit_per_second"], burst=opts["rate_limit_burst"]),
        breaker=BreakerConfig(
            failure_threshold=opts["circuit_failure_threshold"],
            reset_timeout=float(opts["circuit_reset_timeout"]),
        ),
        tls=tls,
        health_check_path=opts["health_check_path"],
        auth_check_path=opts["auth_check_path"],
        pool_size=opts["pool_size"],
        detailed_timings=bool(opts["detailed_timings"]),
        name=conn_id or "",
    )


def _load_extra(extra: Mapping[str, Any] | str | None, conn_id: str | None) -> Any:
    if not isinstance(extra, str):
        return extra or {}
    if not extra.strip():
        return {}
    try:
        return json.loads(extra)
    except json.JSONDecodeError as err:
        # ``from None``: the decoder error keeps the whole document, secrets included.
        where = f"{err.msg} at line {err.lineno} column {err.colno}"
        raise ConnectionConfigError("$", f"a JSON object ({where})", conn_id=conn_id) from None


def _clean(value: str | None) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else value


def _clean_secret(value: str | None, fail: _Fail) -> str | None:
    if not value:
        return None
    # A trailing newline is a paste artefact; an inner one would split an HTTP header.
    value = value.strip("\r\n")
    if "\r" in value or "\n" in value:
        raise fail("password", "a single-line secret", value=value, secret=True)
    return value or None


def _base_url(
    host: str | None,
    port: int | str | None,
    prefix: str | None,
    explicit_scheme: str | None,
    fail: _Fail,
) -> str:
    host = _clean(host)
    if not host:
        raise fail("host", "a host name (or a URL such as https://api.example.com/v1)")
    parts = _split_host(host, fail)
    scheme = parts.scheme.lower() or None
    if scheme and explicit_scheme and scheme != explicit_scheme:
        raise fail("$.scheme", f"the scheme of host {host!r} ({scheme!r})", value=explicit_scheme)
    port_num = _port(port, fail)
    if parts.port is not None and port_num is not None and parts.port != port_num:
        raise fail("port", f"the port of host {host!r} ({parts.port}), or no port", value=port_num)
    path = _prefix(parts.path, "host", fail)
    explicit_path = _prefix(prefix or "", "schema", fail)
    if path and explicit_path and path != explicit_path:
        raise fail("schema", f"the path of host {host!r} ({path!r}), or no path prefix", value=prefix)
    hostname = parts.hostname or ""
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    port_num = port_num if port_num is not None else parts.port
    # The schema gives ``scheme`` no static default: it is https unless a URL in host says otherwise.
    url = f"{scheme or explicit_scheme or 'https'}://{netloc}"
    url += f":{port_num}" if port_num is not None else ""
    return url + (f"/{path or explicit_path}" if path or explicit_path else "")


def _split_host(host: str, fail: _Fail) -> SplitResult:
    expected = "a host name, or an http(s) URL without credentials, query or fragment"
    parts = urlsplit(host if "://" in host else "//" + host)
    if "@" in parts.netloc:
        raise fail("host", expected + " (put credentials in Login and Password)", value=host, secret=True)
    if parts.scheme.lower() not in ("", "http", "https"):
        raise fail("host", expected, value=host)
    try:
        parts.port  # noqa: B018 - property access validates the port
    except ValueError:
        raise fail("host", expected, value=host) from None
    if parts.query or parts.fragment or not parts.hostname or not _HOSTNAME.fullmatch(parts.hostname):
        raise fail("host", expected, value=host)
    return parts


def _port(port: int | str | None, fail: _Fail) -> int | None:
    if port is None or port == "":
        return None
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise fail("port", "an integer between 1 and 65535", value=port) from None
    if not 1 <= number <= 65535 or isinstance(port, bool):
        raise fail("port", "an integer between 1 and 65535", value=port)
    return number


def _prefix(path: str, field: str, fail: _Fail) -> str:
    path = path.strip().strip("/")
    if re.search(r"[\s?#]", path):
        raise fail(field, "a URL path prefix such as 'v1' or 'api/v2'", value=path)
    return path


def _auth(
    opts: Mapping[str, Any], login: str | None, secret: str | None, base_url: str, fail: _Fail
) -> AuthConfig:
    scheme = opts["auth_scheme"]
    if scheme == "none":
        if login or secret:
            field = "login" if login else "password"
            raise fail(
                field,
                "no Login/Password when $.auth_scheme is 'none'; set auth_scheme (e.g. 'basic') to use them",
                value=login if login else secret,
                secret=field == "password",
            )
    else:
        if scheme in _LOGIN_ROLE and not login:
            raise fail("login", f"{_LOGIN_ROLE[scheme]} when $.auth_scheme is {scheme!r}")
        if not secret:
            raise fail("password", f"{_SECRET_ROLE[scheme]} when $.auth_scheme is {scheme!r}")
    token_url = opts["oauth2_endpoint"]
    if scheme == "oauth2_client_credentials" and not token_url:
        raise fail(
            "$.oauth2_endpoint", "the OAuth2 token endpoint when $.auth_scheme is 'oauth2_client_credentials'"
        )
    if token_url and not re.match(r"https?://", token_url):
        token_url = f"{base_url}/{token_url.lstrip('/')}"
    return AuthConfig(
        scheme=scheme,
        login=login,
        secret=secret,
        api_key_name=opts["auth_key_name"],
        api_key_in=opts["auth_key_in"],
        oauth2_token_url=token_url,
        oauth2_scopes=tuple((opts["oauth2_scopes"] or "").split()),
        oauth2_audience=opts["oauth2_audience"],
        oauth2_client_auth=opts["oauth2_client_auth"],
        hmac_algorithm=opts["hmac_algorithm"],
    )


def _tls(opts: Mapping[str, Any], fail: _Fail) -> TlsConfig:
    ca, cert, key = opts["tls_ca_bundle"], opts["tls_client_cert"], opts["tls_client_private_key"]
    if cert and not key:
        raise fail("$.tls_client_private_key", "a PEM private key when $.tls_client_cert is set")
    if key and not cert:
        raise fail("$.tls_client_cert", "a PEM certificate when $.tls_client_private_key is set")
    if ca and not opts["tls_verify"]:
        raise fail(
            "$.tls_verify",
            "true when $.tls_ca_bundle is set (a CA bundle with verification off is contradictory)",
            value=False,
        )
    certs = ("CERTIFICATE", "TRUSTED CERTIFICATE")
    return TlsConfig(
        verify=opts["tls_verify"],
        ca_bundle_pem=ca and _normalize_pem(ca, "$.tls_ca_bundle", certs, fail),
        client_cert_pem=cert and _normalize_pem(cert, "$.tls_client_cert", certs, fail),
        client_key_pem=key and _normalize_pem(key, "$.tls_client_private_key", None, fail, single=True),
        min_version=opts["tls_min_version"],
    )


def _normalize_pem(
    text: str, path: str, labels: tuple[str, ...] | None, fail: _Fail, *, single: bool = False
) -> str:
    """Return ``text``'s PEM blocks re-wrapped at 64 columns.

    The UI's password input drops line breaks and env vars often carry literal ``\\n``; both are
    repaired here. ``labels=None`` means "one unencrypted private key". Values never reach the error.
    """
    blocks = _PEM_BLOCK.findall(text.replace("\\n", "\n"))
    kind = "a certificate" if labels else "an unencrypted private key"
    if not blocks or (single and len(blocks) != 1):
        raise fail(
            path, f"PEM text holding {'exactly one block' if single else 'at least one block'}: {kind}"
        )
    out = []
    for label, body in blocks:
        wanted = label in labels if labels else label.endswith("PRIVATE KEY") and "ENCRYPTED" not in label
        if not wanted or ":" in body:  # a ':' means RFC 1421 headers, i.e. an encrypted legacy key
            note = "" if labels else "; passphrases are not supported"
            raise fail(path, f"PEM blocks of {kind} (found {label!r}){note}")
        data = re.sub(r"\s+", "", body)
        if not _BASE64.fullmatch(data):
            raise fail(path, f"PEM text with a base64 body in the {label!r} block")
        lines = [data[i : i + 64] for i in range(0, len(data), 64)]
        out.append("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]))
    return "\n".join(out) + "\n"


def _headers(opts: Mapping[str, Any], fail: _Fail) -> tuple[tuple[str, str], ...]:
    headers = dict(opts["default_headers"] or {})
    name, version = opts["api_version_header"], opts["api_version"]
    if version and not name:
        raise fail("$.api_version_header", "a header name when $.api_version is set")
    if name and not version:
        raise fail("$.api_version", f"the value of the {name!r} header when $.api_version_header is set")
    if name:
        if name.lower() in {h.lower() for h in headers}:
            raise fail("$.api_version_header", "a header not also set in $.default_headers", value=name)
        headers[name] = version
    return tuple(headers.items())
