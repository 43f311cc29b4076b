"""
# Connection troubleshooting

"The API call failed" can mean six different problems with six different fixes. Work through the
layers in the order a request does, and stop at the first one that fails:

| layer | failure looks like | typed error in task code | fix |
|-------|--------------------|--------------------------|-----|
| DNS | `Name or service not known` | `TransportError`, `sent=False` | Host field, DNS / hosts entry |
| TCP | `Connection refused` at once | `TransportError`, `sent=False` | Port field, service down |
| TCP | `timed out` after `connect_timeout` | `RequestTimeout`, `sent=False` | firewall rule, security group |
| TLS | `certificate verify failed` | `TlsVerificationError` | CA bundle, host name, renewal |
| HTTP | a 4xx/5xx on the health path | `NotFoundError`, `ServerError` | health check path, service logs |
| auth | 401/403 on the auth check path | `AuthenticationError` | login / secret / auth scheme |

Each `broken_*` connection of the sandbox is broken in exactly one layer.

## Network diagnostics

`IntegrationHttpHook.test_connection()` (the UI's *Test* button) walks DNS, TCP, TLS, HTTP and auth and
times each layer; every `Response` also carries `.timings` (time to first byte, total). A healthy baseline
(`network_diagnostics`) tells you what "normal" looks like before anything breaks: which address the
name resolves to, how long the handshake takes, which TLS version and certificate the server presents
and when it expires.

## Authentication errors

401/403 are fatal: the connection does not retry them and `HttpRequestOperator` skips Airflow's retries.
The error carries the status and an excerpt of the partner's answer, never the secret;
`WWW-Authenticate` says what the partner expected. Set the connection's *auth check path* to an
endpoint that requires credentials, otherwise *Test* can only say the credentials were sent, not
accepted (`authentication_errors`).

## Firewall issues

A firewall that *rejects* looks like a stopped service: "connection refused" at once. One that *drops*
packets makes the handshake hang until `connect_timeout`. Both happen before anything is sent
(`sent=False`), so retrying them is safe even for a `POST`. A short `connect_timeout` turns a silent
drop into a fast, clear error (`diagnose` on `broken_port` versus `broken_firewall`).

## DNS resolution

The DNS layer shows the address the worker resolved: a wrong address (stale record, split-horizon DNS,
a hosts entry) is as broken as no address. `broken_dns` names a host that does not exist.

## Connection testing tools

- Airflow UI: Admin -> Connections -> *Test* (needs `[core] test_connection = Enabled`), or
  `airflow connections test <conn_id>` on the command line, or `POST /api/v2/connections/test`.
- In code: `IntegrationHttpHook(conn_id).test_connection()` -> `(ok, message)`, and
  `airflow_provider_integrations.http.diagnose.diagnose(config)` -> structured layers, used here.
- On the worker's host: `getent hosts <host>`, `nc -vz <host> <port>`,
  `openssl s_client -connect <host>:<port> -CAfile ca.pem`, `curl -v https://<host>/health`. Run them
  *where the task runs*: the scheduler host may see different DNS and firewall rules.

## Connections restored

`restore` applies each diagnosis' fix to a copy of the broken connection's settings (host and port,
CA bundle, secret, health check path) and tests again: every layer passes. In a deployment you make the
same change in the UI or the secrets backend and press *Test*.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.diagnose import diagnose
from airflow_provider_integrations.http.errors import HttpError, TransportError

# conn id -> (layer that must fail, error type a task sees, words the diagnosis must contain)
BROKEN: dict[str, tuple[str, str, str]] = {
    "broken_dns": ("DNS", "TransportError", "DNS lookup failed"),
    "broken_port": ("TCP", "TransportError", "Connection refused"),
    "broken_firewall": ("TCP", "RequestTimeout", "timed out"),
    "broken_tls": ("TLS", "TlsVerificationError", "certificate verify failed"),
    "broken_health_path": ("HTTP", "NotFoundError", "returned 404"),
    "broken_auth": ("auth", "AuthenticationError", "returned 401"),
}


def layers_of(config: HttpClientConfig) -> dict[str, Any]:
    result = asyncio.run(diagnose(config))
    return {
        "ok": result.ok,
        "message": result.message,
        "layers": [{"name": layer.name, "ok": layer.ok, "ms": round(layer.ms, 1)} for layer in result.layers],
    }


with DAG(
    dag_id="108_09_01_connection_troubleshooting",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "debugging", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 0},
) as dag:
    # [START howto_troubleshoot_baseline]
    @task
    def network_diagnostics() -> dict[str, Any]:
        ok, message = IntegrationHttpHook("sandbox_tls").test_connection()
        assert ok, message
        baseline = layers_of(IntegrationHttpHook("sandbox_tls").get_config())
        assert [layer["name"] for layer in baseline["layers"]] == ["DNS", "TCP", "TLS", "HTTP"], baseline
        assert "(127.0.0.1)" in message and "TLSv1" in message and "expires" in message, message

        response = IntegrationHttpHook("sandbox_tls").request("GET", "/health")
        timings = response.timings.as_dict()
        assert timings["ttfb_ms"] is not None and timings["total_ms"] is not None, timings
        return {"diagnosis": message, "request_timings_ms": timings}

    # [END howto_troubleshoot_baseline]

    # [START howto_troubleshoot_diagnose]
    @task
    def diagnose_connection(conn_id: str) -> dict[str, Any]:
        hook = IntegrationHttpHook(conn_id)
        config = hook.get_config()
        report = {"conn_id": conn_id, **layers_of(config)}

        # What the same fault looks like to task code: a typed error, never a string to parse.
        path = config.auth_check_path or config.health_check_path
        try:
            hook.request("GET", path)
        except HttpError as exc:
            report["error_type"] = type(exc).__name__
            report["sent"] = exc.sent if isinstance(exc, TransportError) else True
        else:
            report["error_type"] = None
        return report

    # [END howto_troubleshoot_diagnose]

    # [START howto_troubleshoot_auth]
    @task
    def authentication_errors() -> dict[str, Any]:
        key = f"{get_current_context()['run_id']}:auth"
        hook = IntegrationHttpHook("broken_auth")
        secret = hook.get_config().auth.secret or ""
        try:
            hook.request("GET", "/secure/bearer/whoami", params={"key": key})
        except HttpError as exc:
            error = exc
        else:
            raise AssertionError("a wrong token must be rejected")
        assert type(error).__name__ == "AuthenticationError" and error.status == 401 and not error.retriable
        assert "invalid_token" in error.excerpt and secret not in str(error) + error.excerpt

        stats = IntegrationHttpHook("sandbox_api").request("GET", "/stats", params={"key": key}).json()
        assert stats["key"]["requests"] == 1, "a 401 is not retried"

        challenge = hook.request("GET", "/secure/bearer/whoami", raise_for_status=False)
        www_authenticate = challenge.headers["WWW-Authenticate"]
        assert 'error="invalid_token"' in www_authenticate, www_authenticate
        return {"error": str(error), "www_authenticate": www_authenticate}

    # [END howto_troubleshoot_auth]

    @task
    def check_diagnoses(reports: list[dict[str, Any]]) -> dict[str, str]:
        by_id = {r["conn_id"]: r for r in reports}
        assert sorted(by_id) == sorted(BROKEN)
        for conn_id, (layer, error_type, words) in BROKEN.items():
            report = by_id[conn_id]
            failed = [entry["name"] for entry in report["layers"] if not entry["ok"]]
            assert not report["ok"] and failed == [layer], (conn_id, report)
            assert words in report["message"], (conn_id, report["message"])
            assert report["error_type"] == error_type, (conn_id, report)
        # Dropped and rejected connections never reached the server: safe to retry.
        for conn_id in ("broken_dns", "broken_port", "broken_firewall"):
            assert by_id[conn_id]["sent"] is False, by_id[conn_id]
        # Rejected: at once. Dropped: only when connect_timeout expires.
        timeout_ms = (IntegrationHttpHook("broken_firewall").get_config().timeouts.connect or 0) * 1000
        tcp_ms = {c: by_id[c]["layers"][-1]["ms"] for c in ("broken_port", "broken_firewall")}
        assert tcp_ms["broken_port"] < 100 and tcp_ms["broken_firewall"] >= 0.9 * timeout_ms, tcp_ms
        return {conn_id: by_id[conn_id]["message"] for conn_id in BROKEN}

    # [START howto_troubleshoot_restore]
    @task
    def restore() -> dict[str, str]:
        healthy_url = IntegrationHttpHook("sandbox_api").get_config().base_url
        trusted_tls = IntegrationHttpHook("sandbox_tls").get_config().tls
        valid_secret = IntegrationHttpHook("sandbox_bearer").get_config().auth.secret

        def fixed(conn_id: str) -> HttpClientConfig:
            config = IntegrationHttpHook(conn_id).get_config()
            fixes = {
                "broken_dns": {"base_url": healthy_url},
                "broken_port": {"base_url": healthy_url},
                "broken_firewall": {"base_url": healthy_url},
                "broken_tls": {"tls": trusted_tls},
                "broken_health_path": {"health_check_path": "/health"},
                "broken_auth": {"auth": dataclasses.replace(config.auth, secret=valid_secret)},
            }
            return dataclasses.replace(config, **fixes[conn_id])

        restored = {}
        for conn_id in BROKEN:
            result = layers_of(fixed(conn_id))
            assert result["ok"], (conn_id, result["message"])
            restored[conn_id] = result["message"]
        assert "bearer accepted" in restored["broken_auth"], "the auth check path proves the new secret"
        return restored

    # [END howto_troubleshoot_restore]

    reports = diagnose_connection.expand(conn_id=list(BROKEN))
    network_diagnostics() >> reports
    check_diagnoses(reports) >> authentication_errors() >> restore()


if __name__ == "__main__":
    dag.test()
