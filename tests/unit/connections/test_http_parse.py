"""parse_http_connection: standard fields + extras -> HttpClientConfig, and every way it refuses."""

# The case table reads best one case per line.
# ruff: noqa: E501

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import (
    AuthConfig,
    BreakerConfig,
    HttpClientConfig,
    RateLimit,
    RetryPolicy,
    Timeouts,
    TlsConfig,
)
from airflow_provider_integrations.connections.schema import load_schema
from airflow_provider_integrations.exceptions import MASKED, MISSING, ConnectionConfigError
from tests.unit.connections._support import SECRET, Pem, parse


def full_extra(pem: Pem) -> dict[str, Any]:
    return {
        "scheme": "http",
        "auth_scheme": "oauth2_client_credentials",
        "auth_key_name": "api_key",
        "auth_key_in": "query",
        "oauth2_endpoint": "oauth/token",
        "oauth2_scopes": "read  write",
        "oauth2_audience": "https://api.example.com",
        "oauth2_client_auth": "client_secret_post",
        "hmac_algorithm": "sha512",
        "default_headers": {"Accept": "application/json", "User-Agent": "tests/1"},
        "api_version_header": "X-API-Version",
        "api_version": "2024-10-01",
        "connect_timeout": 1.5,
        "read_timeout": 2,
        "total_timeout": 9,
        "retry_max_attempts": 7,
        "retry_base_delay": 0,
        "retry_max_delay": 4.5,
        "retry_jitter": False,
        "retry_on_statuses": [503, 429],
        "retry_respect_retry_after": False,
        "retry_budget_seconds": 33,
        "idempotency_header": "X-Request-Id",
        "rate_limit_per_second": 2.5,
        "rate_limit_burst": 4,
        "circuit_failure_threshold": 0,
        "circuit_reset_timeout": 12,
        "tls_verify": True,
        "tls_ca_bundle": pem.cert,
        "tls_client_cert": pem.cert,
        "tls_client_private_key": pem.key,
        "tls_min_version": "TLSv1.3",
        "health_check_path": "/status",
        "auth_check_path": "/me",
        "pool_size": 8,
        "detailed_timings": True,
    }


def test_full_config_round_trip(pem: Pem) -> None:
    extra = full_extra(pem)
    assert set(extra) == set(load_schema()["properties"]), "the test must set every extra"
    config = parse(
        json.dumps(extra),
        host="api.example.com",
        port=8080,
        schema="/v2/",
        login="client-id",
        password=SECRET,
    )
    assert config == HttpClientConfig(
        base_url="http://api.example.com:8080/v2",
        auth=AuthConfig(
            scheme="oauth2_client_credentials",
            login="client-id",
            secret=SECRET,
            api_key_name="api_key",
            api_key_in="query",
            oauth2_token_url="http://api.example.com:8080/v2/oauth/token",
            oauth2_scopes=("read", "write"),
            oauth2_audience="https://api.example.com",
            oauth2_client_auth="client_secret_post",
            hmac_algorithm="sha512",
        ),
        headers=(("Accept", "application/json"), ("User-Agent", "tests/1"), ("X-API-Version", "2024-10-01")),
        timeouts=Timeouts(connect=1.5, read=2.0, total=9.0),
        retry=RetryPolicy(
            max_attempts=7,
            base_delay=0.0,
            max_delay=4.5,
            jitter=False,
            retry_on_statuses=frozenset({429, 503}),
            respect_retry_after=False,
            budget=33.0,
            idempotency_header="X-Request-Id",
        ),
        rate_limit=RateLimit(per_second=2.5, burst=4),
        breaker=BreakerConfig(failure_threshold=0, reset_timeout=12.0),
        tls=TlsConfig(
            verify=True,
            ca_bundle_pem=pem.cert,
            client_cert_pem=pem.cert,
            client_key_pem=pem.key,
            min_version="TLSv1.3",
        ),
        health_check_path="/status",
        auth_check_path="/me",
        pool_size=8,
        detailed_timings=True,
        name="my_api",
    )
    assert SECRET not in repr(config) and pem.key not in repr(config)
    assert isinstance(config.timeouts.read, float) and isinstance(config.retry.max_attempts, int)


@pytest.mark.parametrize(
    "extra",
    [None, "", "  ", "{}", {}, dict.fromkeys(load_schema()["properties"])],
    ids=["none", "empty-str", "blank-str", "empty-json", "empty-dict", "all-null"],
)
def test_defaults(extra: Any) -> None:
    assert parse(extra) == HttpClientConfig(base_url="https://api.example.com", name="my_api")


@pytest.mark.parametrize(
    ("host", "port", "schema", "extra", "base_url"),
    [
        ("api.example.com", None, None, {}, "https://api.example.com"),
        (" API.example.com ", "8443", "", {"scheme": "http"}, "http://api.example.com:8443"),
        ("api.example.com", 443, "v1", {}, "https://api.example.com:443/v1"),
        ("https://api.example.com", None, None, {}, "https://api.example.com"),
        ("http://api.example.com:8080/", None, None, {}, "http://api.example.com:8080"),
        (
            "https://api.example.com:8443/api/v2/",
            8443,
            "api/v2",
            {"scheme": "https"},
            "https://api.example.com:8443/api/v2",
        ),
        ("HTTPS://api.example.com/v1", None, "/v1/", {}, "https://api.example.com/v1"),
        ("http://localhost:5000", None, "v1", {}, "http://localhost:5000/v1"),
        ("api.example.com:9000/base", None, None, {}, "https://api.example.com:9000/base"),
        ("https://[::1]:8443", None, None, {}, "https://[::1]:8443"),
        ("127.0.0.1", 8080, None, {"scheme": "http"}, "http://127.0.0.1:8080"),
    ],
)
def test_host_forms(host: str, port: Any, schema: str | None, extra: dict[str, Any], base_url: str) -> None:
    assert parse(extra, host=host, port=port, schema=schema).base_url == base_url


def test_absolute_oauth2_endpoint_is_kept_and_relative_one_joined() -> None:
    auth = {"auth_scheme": "oauth2_client_credentials"}
    creds = {"login": "id", "password": SECRET, "host": "https://api.example.com/v1"}
    absolute = parse({**auth, "oauth2_endpoint": "https://login.example.com/token"}, **creds)
    assert absolute.auth.oauth2_token_url == "https://login.example.com/token"
    assert parse({**auth, "oauth2_endpoint": "/oauth/token"}, **creds).auth.oauth2_token_url == (
        "https://api.example.com/v1/oauth/token"
    )


def test_pem_line_breaks_lost_in_a_password_input_are_restored(pem: Pem) -> None:
    flat_key = pem.key.replace("\n", "")
    escaped_cert = pem.cert.replace("\n", "\\n")
    config = parse({"tls_client_cert": escaped_cert, "tls_client_private_key": flat_key})
    assert config.tls.client_key_pem == pem.key
    assert config.tls.client_cert_pem == pem.cert


def test_auth_schemes_take_login_and_secret_from_the_standard_fields() -> None:
    basic = parse({"auth_scheme": "basic"}, login=" user ", password=SECRET + "\n")
    assert (basic.auth.login, basic.auth.secret) == ("user", SECRET)
    bearer = parse({"auth_scheme": "bearer"}, password=SECRET)
    assert (bearer.auth.scheme, bearer.auth.secret) == ("bearer", SECRET)
    hmac = parse({"auth_scheme": "hmac", "hmac_algorithm": "sha512"}, login="kid", password=SECRET)
    assert (hmac.auth.login, hmac.auth.hmac_algorithm) == ("kid", "sha512")


Case = Callable[[Pem], dict[str, Any]]
ORACLE = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB\n\nQUJD\n-----END RSA PRIVATE KEY-----"

# fmt: off
INVALID: list[Any] = [
    # Extras checked by the schema.
    ("attempts-0", lambda p: {"extra": {"retry_max_attempts": 0}}, "$.retry_max_attempts", "an integer between 1 and 20"),
    ("attempts-21", lambda p: {"extra": {"retry_max_attempts": 21}}, "$.retry_max_attempts", "between 1 and 20"),
    ("attempts-text", lambda p: {"extra": '{"retry_max_attempts": "three"}'}, "$.retry_max_attempts", "an integer"),
    ("scheme", lambda p: {"extra": {"scheme": "ftp"}}, "$.scheme", "one of 'https', 'http'"),
    ("auth-scheme", lambda p: {"extra": {"auth_scheme": "digest"}}, "$.auth_scheme", "'oauth2_client_credentials'"),
    ("timeout-0", lambda p: {"extra": {"connect_timeout": 0}}, "$.connect_timeout", "a number > 0"),
    ("base-delay", lambda p: {"extra": {"retry_base_delay": -1}}, "$.retry_base_delay", "a number >= 0"),
    ("status-200", lambda p: {"extra": {"retry_on_statuses": [429, 200]}}, "$.retry_on_statuses[1]", "between 400 and 599"),
    ("status-dup", lambda p: {"extra": {"retry_on_statuses": [429, 429]}}, "$.retry_on_statuses", "distinct integers"),
    ("jitter", lambda p: {"extra": {"retry_jitter": "maybe"}}, "$.retry_jitter", "true or false"),
    ("rate-0", lambda p: {"extra": {"rate_limit_per_second": 0}}, "$.rate_limit_per_second", "a number > 0"),
    ("burst-0", lambda p: {"extra": {"rate_limit_burst": 0}}, "$.rate_limit_burst", "an integer >= 1"),
    ("breaker", lambda p: {"extra": {"circuit_failure_threshold": -1}}, "$.circuit_failure_threshold", ">= 0"),
    ("pool", lambda p: {"extra": {"pool_size": 1001}}, "$.pool_size", "between 1 and 1000"),
    ("health", lambda p: {"extra": {"health_check_path": "health"}}, "$.health_check_path", "starting with /"),
    ("auth-check", lambda p: {"extra": {"auth_check_path": "me"}}, "$.auth_check_path", "starting with /"),
    ("idem-header", lambda p: {"extra": {"idempotency_header": "Idem Key"}}, "$.idempotency_header", "HTTP header name"),
    ("hdr-value", lambda p: {"extra": {"default_headers": {"X-Token": "a\r\nb" + SECRET}}}, "$.default_headers['X-Token']", "without line breaks"),
    ("hdr-name", lambda p: {"extra": {"default_headers": {"Bad Name": "v"}}}, "$.default_headers['Bad Name']", "HTTP header name"),
    ("hdr-type", lambda p: {"extra": {"default_headers": ["Authorization", SECRET]}}, "$.default_headers", "an object mapping"),
    ("tls-version", lambda p: {"extra": {"tls_min_version": "TLSv1.1"}}, "$.tls_min_version", "'TLSv1.2', 'TLSv1.3'"),
    ("key-not-pem", lambda p: {"extra": {"tls_client_private_key": SECRET}}, "$.tls_client_private_key", "PEM"),
    ("endpoint", lambda p: {"extra": {"oauth2_endpoint": "ftp://x/token"}}, "$.oauth2_endpoint", "http(s) URL"),
    ("unknown", lambda p: {"extra": {"retry_max_attemps": SECRET}}, "$.retry_max_attemps", "did you mean 'retry_max_attempts'"),
    ("json", lambda p: {"extra": '{"password": "' + SECRET}, "$", "a JSON object"),
    # Rules across fields.
    ("cert-no-key", lambda p: {"extra": {"tls_client_cert": p.cert}}, "$.tls_client_private_key", "when $.tls_client_cert is set"),
    ("key-no-cert", lambda p: {"extra": {"tls_client_private_key": p.key}}, "$.tls_client_cert", "when $.tls_client_private_key is set"),
    ("verify-off-ca", lambda p: {"extra": {"tls_verify": False, "tls_ca_bundle": p.cert}}, "$.tls_verify", "true when $.tls_ca_bundle"),
    ("encrypted-key", lambda p: {"extra": {"tls_client_cert": p.cert, "tls_client_private_key": ORACLE}}, "$.tls_client_private_key", "unencrypted private key"),
    ("two-keys", lambda p: {"extra": {"tls_client_cert": p.cert, "tls_client_private_key": p.key + p.key}}, "$.tls_client_private_key", "exactly one block"),
    ("key-in-cert", lambda p: {"extra": {"tls_client_cert": p.key, "tls_client_private_key": p.key}}, "$.tls_client_cert", "a certificate (found 'PRIVATE KEY')"),
    ("bad-base64", lambda p: {"extra": {"tls_ca_bundle": "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----"}}, "$.tls_ca_bundle", "base64"),
    ("delays", lambda p: {"extra": {"retry_base_delay": 40, "retry_max_delay": 30}}, "$.retry_base_delay", "<= $.retry_max_delay (30)"),
    ("basic-login", lambda p: {"extra": {"auth_scheme": "basic"}, "password": SECRET}, "login", "the username"),
    ("basic-password", lambda p: {"extra": {"auth_scheme": "basic"}, "login": "u"}, "password", "the password"),
    ("bearer", lambda p: {"extra": {"auth_scheme": "bearer"}}, "password", "the bearer token"),
    ("api-key", lambda p: {"extra": {"auth_scheme": "api_key"}, "login": "x"}, "password", "the API key"),
    ("oauth2-endpoint", lambda p: {"extra": {"auth_scheme": "oauth2_client_credentials"}, "login": "id", "password": SECRET}, "$.oauth2_endpoint", "token endpoint"),
    ("oauth2-client", lambda p: {"extra": {"auth_scheme": "oauth2_client_credentials", "oauth2_endpoint": "/t"}, "password": SECRET}, "login", "client ID"),
    ("hmac-key-id", lambda p: {"extra": {"auth_scheme": "hmac"}, "password": SECRET}, "login", "HMAC key ID"),
    ("none-password", lambda p: {"password": SECRET}, "password", "set auth_scheme"),
    ("multiline-secret", lambda p: {"extra": {"auth_scheme": "bearer"}, "password": "a\nb" + SECRET}, "password", "single-line"),
    ("version-no-header", lambda p: {"extra": {"api_version": "2024"}}, "$.api_version_header", "when $.api_version is set"),
    ("header-no-version", lambda p: {"extra": {"api_version_header": "X-V"}}, "$.api_version", "'X-V' header"),
    ("version-dup", lambda p: {"extra": {"api_version_header": "x-v", "api_version": "1", "default_headers": {"X-V": "2"}}}, "$.api_version_header", "not also set"),
    # Standard fields.
    ("no-host", lambda p: {"host": " "}, "host", "a host name"),
    ("host-ftp", lambda p: {"host": "ftp://files.example.com"}, "host", "http(s) URL"),
    ("host-creds", lambda p: {"host": f"https://user:{SECRET}@api.example.com"}, "host", "credentials in Login and Password"),
    ("host-ftp-creds", lambda p: {"host": f"ftp://user:{SECRET}@files.example.com"}, "host", "credentials in Login"),
    ("host-query", lambda p: {"host": "https://api.example.com/?a=1"}, "host", "without credentials, query"),
    ("port-range", lambda p: {"port": 70000}, "port", "between 1 and 65535"),
    ("port-conflict", lambda p: {"host": "https://api.example.com:8443", "port": 9443}, "port", "port of host 'https://api.example.com:8443' (8443)"),
    ("scheme-conflict", lambda p: {"host": "http://api.example.com", "extra": {"scheme": "https"}}, "$.scheme", "scheme of host 'http://api.example.com' ('http')"),
    ("prefix-conflict", lambda p: {"host": "https://api.example.com/v1", "schema": "v2"}, "schema", "path of host 'https://api.example.com/v1' ('v1')"),
    ("prefix-space", lambda p: {"schema": "v 1"}, "schema", "a URL path prefix"),
]
# fmt: on


@pytest.mark.parametrize(("case", "path", "expected"), [pytest.param(*c[1:], id=c[0]) for c in INVALID])
def test_invalid_connection(pem: Pem, case: Case, path: str, expected: str) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        parse(**case(pem))
    err = info.value
    message = str(err)
    assert err.path == path
    assert expected in message, message
    assert message.startswith(f"integration_http connection 'my_api': {path}")
    key_body = pem.key.splitlines()[1]
    for text in (message, repr(err), repr(err.value), str(pickle.loads(pickle.dumps(err)))):
        assert SECRET not in text
        assert key_body not in text
    # A chained decoder or jsonschema error could quote the raw value in a traceback.
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def test_there_are_at_least_twenty_invalid_cases() -> None:
    assert len(INVALID) >= 20


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"extra": {"tls_client_private_key": SECRET}}, MASKED),
        ({"password": SECRET}, MASKED),
        ({"extra": {"default_headers": {"Authorization": f"Bearer {SECRET}\n\nx"}}}, MASKED),
        ({"extra": {"retry_max_attempts": 0}}, 0),
        ({"extra": {"auth_scheme": "bearer"}}, MISSING),
    ],
)
def test_value_attribute(kwargs: dict[str, Any], shown: Any) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        parse(**kwargs)
    assert info.value.value == shown
