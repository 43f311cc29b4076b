"""Fixtures for the sandbox's own tests: real child processes, plain and mutual TLS."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess, TlsMaterial, generate_tls_material


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess() as process:
        yield process
        # Every fault is deliberate; an unhandled server-side exception is a sandbox bug.
        assert "Traceback" not in process.stderr_text(), process.stderr_text()


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return generate_tls_material(tmp_path_factory.mktemp("sandbox-tls"))


@pytest.fixture(scope="session")
def mtls_sandbox(tls_material: TlsMaterial) -> Iterator[SandboxProcess]:
    with SandboxProcess(tls=tls_material, require_client_cert=True) as process:
        yield process
        assert "Traceback" not in process.stderr_text(), process.stderr_text()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    """A fault/stats key unique to this test, so state never leaks between tests."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"
