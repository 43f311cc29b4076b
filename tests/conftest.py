"""Shared fixtures: a private Airflow home (SQLite), the sandbox as a real process, TLS material.

Airflow reads its configuration at import, so the environment is set here, before any test module
imports it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="integrations-airflow-home-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)

from airflow_provider_integrations.sandbox.certs import TlsMaterial, generate_tls_material  # noqa: E402
from airflow_provider_integrations.sandbox.process import SandboxProcess  # noqa: E402


def airflow_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real ``airflow`` CLI of this virtualenv against the test home."""
    exe = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run(
        [exe, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=check,
        timeout=240,
    )


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database (once per test session)."""
    airflow_cli("db", "migrate")
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess() as proc:
        yield proc


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return generate_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def sandbox_tls(tls_material: TlsMaterial) -> Iterator[SandboxProcess]:
    with SandboxProcess(tls=tls_material) as proc:
        yield proc


@pytest.fixture(scope="session")
def sandbox_mtls(tls_material: TlsMaterial) -> Iterator[SandboxProcess]:
    with SandboxProcess(tls=tls_material, require_client_cert=True) as proc:
        yield proc


ConnFactory = Callable[..., str]


@pytest.fixture
def http_connection(monkeypatch: pytest.MonkeyPatch) -> ConnFactory:
    """Define an ``integration_http`` connection through ``AIRFLOW_CONN_<ID>`` (JSON form)."""
    from airflow_provider_integrations.hooks.http import CONFIGS

    def make(
        conn_id: str, url: str, *, login: str | None = None, password: str | None = None, **extra: Any
    ) -> str:
        from yarl import URL

        u = URL(url)
        doc = {
            "conn_type": "integration_http",
            "host": u.host,
            "port": u.port,
            "schema": u.path.strip("/") or None,
            "login": login,
            "password": password,
            "extra": {"scheme": u.scheme, **extra},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(doc))
        CONFIGS.invalidate(conn_id)
        return conn_id

    return make
