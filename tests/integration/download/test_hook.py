"""``IntegrationHttpHook.download`` / ``adownload``: the connection's base URL, auth and redaction."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.download import ChecksumMismatchError
from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.files import content
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ConnFactory

SIZE = 3_000_000


def test_sync_download_resumes_and_verifies(
    http_connection: ConnFactory, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    conn_id = http_connection("dl_sync", sandbox.url, retry_base_delay=0.01)
    data = content("export.bin", SIZE)
    result = IntegrationHttpHook(conn_id).download(
        "/files/export.bin",
        tmp_path / "export.bin",
        params={"size": SIZE, "key": f"hook-{tmp_path.name}", "cut_after": 2_000_000},
        checksum=f"sha256:{hashlib.sha256(data).hexdigest()}",
        expected_size=SIZE,
    )
    assert (tmp_path / "export.bin").read_bytes() == data
    assert result.requests == 2 and len(result.resumed_at) == 1
    assert result.path == str(tmp_path / "export.bin")


async def test_async_download_sends_the_connections_credentials(
    http_connection: ConnFactory, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    # The sandbox's api-key echo endpoint answers 401 without the key: the download's request was
    # authenticated by the connection's strategy, like any other request of the hook.
    conn_id = http_connection("dl_key", sandbox.url, password=creds.API_KEY, auth_scheme="api_key")
    hook = IntegrationHttpHook(conn_id)
    result = await hook.adownload("/secure/api_key/whoami", tmp_path / "whoami.json")
    assert result.size == len((tmp_path / "whoami.json").read_bytes()) > 0

    no_key = http_connection("dl_no_key", sandbox.url)
    with pytest.raises(errors.AuthenticationError) as info:
        await IntegrationHttpHook(no_key).adownload("/secure/api_key/whoami", tmp_path / "denied.json")
    assert info.value.status == 401
    assert not (tmp_path / "denied.json").exists() and not (tmp_path / "denied.json.part").exists()


async def test_errors_do_not_leak_query_secrets(
    http_connection: ConnFactory, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    conn_id = http_connection(
        "dl_query_key",
        sandbox.url,
        password="query-secret-123",
        auth_scheme="api_key",
        auth_key_in="query",
        auth_key_name="api_key",
    )
    with pytest.raises(ChecksumMismatchError) as info:
        await IntegrationHttpHook(conn_id).adownload(
            "/files/x.bin", tmp_path / "x.bin", params={"size": 10_000}, checksum="md5:" + "0" * 32
        )
    assert "query-secret-123" not in str(info.value) and "query-secret-123" not in info.value.url
    assert "/files/x.bin" in str(info.value)
