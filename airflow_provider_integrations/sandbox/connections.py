"""The Airflow connections the example DAGs use, pointing at a running sandbox.

The demo runner and the tests export them as ``AIRFLOW_CONN_<ID>`` (JSON form), the way a deployment
would use a secrets backend; the DAG files only name the connection ids.
"""

from __future__ import annotations

import json
from typing import Any

from yarl import URL

from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.certs import TlsMaterial

# Fast retries keep the examples quick; production defaults are in the connection schema.
_FAST: dict[str, Any] = {"retry_base_delay": 0.05, "retry_max_delay": 0.5, "circuit_failure_threshold": 0}


def _conn(url: str, *, login: str | None = None, password: str | None = None, **extra: Any) -> dict[str, Any]:
    u = URL(url)
    return {
        "conn_type": "integration_http",
        "host": u.host,
        "port": u.port,
        "schema": u.path.strip("/") or None,
        "login": login,
        "password": password,
        "extra": {"scheme": u.scheme, **extra},
    }


def example_connections(
    url: str,
    tls_url: str | None = None,
    tls: TlsMaterial | None = None,
    *,
    blackhole_url: str | None = None,
) -> dict[str, str]:
    """``{conn_id: JSON}`` for every connection an example DAG names.

    ``blackhole_url`` is a port that never completes a TCP handshake (a firewall that drops packets);
    ``broken_firewall`` points at it.
    """
    conns = {
        "sandbox_api": _conn(url, **_FAST),
        "sandbox_basic": _conn(
            url, login=creds.BASIC_USERNAME, password=creds.BASIC_PASSWORD, auth_scheme="basic", **_FAST
        ),
        "sandbox_bearer": _conn(
            url,
            password=creds.BEARER_TOKEN,
            auth_scheme="bearer",
            auth_check_path="/secure/bearer/whoami",
            **_FAST,
        ),
        "sandbox_api_key": _conn(url, password=creds.API_KEY, auth_scheme="api_key", **_FAST),
        "sandbox_oauth": _conn(
            url,
            login=creds.OAUTH_CLIENT_ID,
            password=creds.OAUTH_CLIENT_SECRET,
            auth_scheme="oauth2_client_credentials",
            oauth2_endpoint="/oauth/token",
            oauth2_scopes="items:read items:write",
            **_FAST,
        ),
        "sandbox_hmac": _conn(
            url, login=creds.HMAC_KEY_ID, password=creds.HMAC_SECRET, auth_scheme="hmac", **_FAST
        ),
        "sandbox_breaker": _conn(
            url,
            retry_max_attempts=1,
            circuit_failure_threshold=3,
            circuit_reset_timeout=1,
            retry_base_delay=0.05,
        ),
        "sandbox_slow": _conn(
            url,
            circuit_failure_threshold=0,
            read_timeout=0.5,
            total_timeout=2,
            retry_max_attempts=2,
            retry_base_delay=0.05,
        ),
        # Waits longer than the budget (a long Retry-After) are handed to Airflow's retries instead.
        "sandbox_retry_budget": _conn(url, retry_budget_seconds=0.2, **_FAST),
        # Batch example (108_05_04): the partner allows 50 requests/s, in bursts of 5.
        "sandbox_batch": _conn(url, rate_limit_per_second=50, rate_limit_burst=5, **_FAST),
        # Troubleshooting examples: each is broken in one layer.
        "broken_dns": _conn("http://no-such-host.invalid:8080", **_FAST),
        "broken_port": _conn("http://127.0.0.1:1", **_FAST),
        "broken_auth": _conn(
            url,
            password="wrong-token",
            auth_scheme="bearer",
            auth_check_path="/secure/bearer/whoami",
            **_FAST,
        ),
        "broken_health_path": _conn(url, health_check_path="/no-such-health", **_FAST),
    }
    # Database examples (108_02_02, 108_02_05, 108_03_02, 108_06_02): the local servers, standard
    # connection types of the postgres and mysql providers.
    conns["integrations_pg"] = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "schema": "test",
    }
    conns["integrations_mysql"] = {
        "conn_type": "mysql",
        "host": "127.0.0.1",
        "port": 3306,
        "login": "root",
        "schema": "test",
    }
    if tls_url is not None and tls is not None:
        conns["sandbox_tls"] = _conn(tls_url, tls_ca_bundle=tls.ca_cert_pem, **_FAST)
        conns["broken_tls"] = _conn(tls_url, **_FAST)
    if blackhole_url is not None:
        conns["broken_firewall"] = _conn(blackhole_url, connect_timeout=0.3, retry_max_attempts=2, **_FAST)
    return {conn_id: json.dumps(doc) for conn_id, doc in conns.items()}


def as_environment(connections: dict[str, str]) -> dict[str, str]:
    return {f"AIRFLOW_CONN_{conn_id.upper()}": doc for conn_id, doc in connections.items()}
