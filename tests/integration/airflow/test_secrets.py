"""Secrets never reach logs or exception text, and the hook registers them with Airflow's masker."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.errors import AuthenticationError, HttpError
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ConnFactory

SECRET = "very-secret-token-123"


def test_secret_is_masked_and_absent_from_logs_and_errors(
    http_connection: ConnFactory, sandbox: SandboxProcess, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    conn_id = http_connection(
        "secret_check",
        sandbox.url,
        password=SECRET,
        auth_scheme="api_key",
        auth_key_in="query",
        auth_key_name="api_key",
        retry_base_delay=0.01,
    )
    hook = IntegrationHttpHook(conn_id)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationError) as info:
        hook.request("GET", "/secure/api_key/whoami")  # wrong key for the sandbox: 401
    with pytest.raises(HttpError) as retried:
        hook.request("GET", "/status/503")  # retried with warnings logged, then raised
    assert redact(f"token={SECRET}") == "token=***", "the hook registered the secret with Airflow's masker"
    shown = [str(info.value), repr(info.value), info.value.url, str(retried.value), caplog.text]
    assert all(SECRET not in text for text in shown), "a secret leaked"
    assert info.value.url.endswith("/secure/api_key/whoami"), "errors show the URL without credentials"
    assert "retrying" in caplog.text, "the retry log lines were captured"
