"""The connection test: layered one-line diagnosis through the hook, the CLI and the REST endpoint."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.certs import TlsMaterial
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import airflow_cli

LAYERS_OK = re.compile(
    r"^Connection OK: DNS [\d.]+ ms \(127\.0\.0\.1\) \| TCP [\d.]+ ms .*\| HTTP [\d.]+ ms \(GET /health 200\)"
)


BEARER = {"auth_scheme": "bearer", "auth_check_path": "/secure/bearer/whoami"}


def cases(sandbox: SandboxProcess) -> dict[str, tuple[dict[str, Any], bool, list[str]]]:
    """name -> (connection fields, expected status, fragments the one-line message must contain)."""
    port = int(sandbox.url.rsplit(":", 1)[1])
    return {
        "success": (
            {
                "host": "127.0.0.1",
                "port": port,
                "password": creds.BEARER_TOKEN,
                "extra": {**BEARER, "scheme": "http"},
            },
            True,
            [
                "Connection OK",
                "DNS",
                "TCP",
                "HTTP",
                "GET /health 200",
                "bearer accepted: GET /secure/bearer/whoami 200",
            ],
        ),
        "dns": (
            {"host": "no-such-host.invalid", "port": 80, "extra": {"scheme": "http"}},
            False,
            ["DNS lookup failed for 'no-such-host.invalid'", "check the Host field"],
        ),
        "refused": (
            {"host": "127.0.0.1", "port": 1, "extra": {"scheme": "http"}},
            False,
            [
                "TCP connect to 127.0.0.1:1 failed",
                "Connection refused",
                "check the Host and Port fields",
                "passed: DNS",
            ],
        ),
        "unauthorized": (
            {
                "host": "127.0.0.1",
                "port": port,
                "password": "wrong-token",
                "extra": {**BEARER, "scheme": "http"},
            },
            False,
            [
                "auth bearer rejected: GET /secure/bearer/whoami returned 401",
                "check the login and secret fields",
            ],
        ),
        "health_404": (
            {"host": "127.0.0.1", "port": port, "extra": {"scheme": "http", "health_check_path": "/nope"}},
            False,
            ["HTTP GET /nope returned 404", "Health-check path"],
        ),
    }


def tls_cases(
    sandbox_tls: SandboxProcess, material: TlsMaterial
) -> dict[str, tuple[dict[str, Any], bool, list[str]]]:
    port = int(sandbox_tls.url.rsplit(":", 1)[1])
    return {
        "tls_ok": (
            {"host": "localhost", "port": port, "extra": {"tls_ca_bundle": material.ca_cert_pem}},
            True,
            ["Connection OK", "TLS", "TLSv1.3", "CN=sandbox.localhost", "expires", "days"],
        ),
        "tls_verify": (
            {"host": "localhost", "port": port, "extra": {}},
            False,
            ["TLS handshake failed: certificate verify failed", "set the CA bundle field"],
        ),
    }


def as_env(fields: dict[str, Any]) -> str:
    return json.dumps({"conn_type": "integration_http", **fields})


def run_hook(monkeypatch: pytest.MonkeyPatch, conn_id: str, fields: dict[str, Any]) -> tuple[bool, str]:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", as_env(fields))
    return IntegrationHttpHook(conn_id).test_connection()


def assert_message(ok: bool, message: str, expected_ok: bool, fragments: list[str]) -> None:
    assert ok is expected_ok, message
    assert "\n" not in message, "the UI shows one line"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


@pytest.mark.parametrize("name", ["success", "dns", "refused", "unauthorized", "health_404"])
def test_hook_diagnosis(monkeypatch: pytest.MonkeyPatch, sandbox: SandboxProcess, name: str) -> None:
    fields, expected, fragments = cases(sandbox)[name]
    ok, message = run_hook(monkeypatch, f"diag_{name}", fields)
    assert_message(ok, message, expected, fragments)
    if expected:
        assert LAYERS_OK.match(message), message


@pytest.mark.parametrize("name", ["tls_ok", "tls_verify"])
def test_hook_tls_diagnosis(
    monkeypatch: pytest.MonkeyPatch, sandbox_tls: SandboxProcess, tls_material: TlsMaterial, name: str
) -> None:
    fields, expected, fragments = tls_cases(sandbox_tls, tls_material)[name]
    ok, message = run_hook(monkeypatch, f"diag_{name}", fields)
    assert_message(ok, message, expected, fragments)


def test_invalid_extra_is_reported_with_its_json_path(monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = run_hook(
        monkeypatch,
        "diag_invalid",
        {"host": "127.0.0.1", "extra": {"scheme": "http", "retry_max_attempts": 0}},
    )
    assert not ok and "$.retry_max_attempts" in message and message.startswith("Invalid connection settings")


def test_secret_never_appears_in_the_diagnosis(
    monkeypatch: pytest.MonkeyPatch, sandbox: SandboxProcess
) -> None:
    fields, _, _ = cases(sandbox)["unauthorized"]
    _, message = run_hook(monkeypatch, "diag_secret", fields)
    assert "wrong-token" not in message


@pytest.mark.slow
def test_cli_add_then_test_prints_the_diagnosis(
    airflow_db: object, sandbox: SandboxProcess, sandbox_tls: SandboxProcess, tls_material: TlsMaterial
) -> None:
    every = {**cases(sandbox), **tls_cases(sandbox_tls, tls_material)}
    for name in ["success", "dns", "refused", "tls_verify", "unauthorized"]:
        fields, expected, fragments = every[name]
        conn_id = f"cli_{name}"
        airflow_cli("connections", "delete", conn_id, check=False)
        args = [
            "connections",
            "add",
            conn_id,
            "--conn-type",
            "integration_http",
            "--conn-host",
            fields["host"],
        ]
        args += ["--conn-port", str(fields["port"]), "--conn-extra", json.dumps(fields["extra"])]
        if fields.get("password"):
            args += ["--conn-password", fields["password"]]
        added = airflow_cli(*args)
        assert f"Successfully added `conn_id`={conn_id}" in added.stdout
        tested = airflow_cli("connections", "test", conn_id, "-v", check=False)
        output = tested.stdout + tested.stderr
        assert (tested.returncode == 0) is expected, output
        assert ("Connection success!" if expected else "Connection failed!") in output
        for fragment in fragments:
            assert fragment in output, f"{name}: {fragment!r} missing from CLI output:\n{output}"
        assert "wrong-token" not in output


@pytest.mark.slow
def test_rest_endpoint_returns_the_diagnosis(
    airflow_db: object,
    monkeypatch: pytest.MonkeyPatch,
    sandbox: SandboxProcess,
    sandbox_tls: SandboxProcess,
    tls_material: TlsMaterial,
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    every = {**cases(sandbox), **tls_cases(sandbox_tls, tls_material)}
    with TestClient(create_app("core")) as client:
        for name in ["success", "dns", "refused", "tls_verify", "unauthorized", "tls_ok"]:
            fields, expected, fragments = every[name]
            body = {"connection_id": f"rest_{name}", "conn_type": "integration_http", **fields}
            body["extra"] = json.dumps(fields["extra"])
            response = client.post("/api/v2/connections/test", json=body)
            assert response.status_code == 200, response.text
            result = response.json()
            assert_message(result["status"], result["message"], expected, fragments)
