"""Local partner-API sandbox (aiohttp) for tests, examples, the demo and benchmarks.

Deliberately free of Airflow imports so it can run anywhere, including as a
plain child process: ``python -m airflow_provider_integrations.sandbox --port 0``.
"""

from __future__ import annotations

from airflow_provider_integrations.sandbox.app import SandboxConfig, create_app
from airflow_provider_integrations.sandbox.certs import TlsMaterial, generate_tls_material
from airflow_provider_integrations.sandbox.process import SandboxProcess, SandboxStartError
from airflow_provider_integrations.sandbox.server import running_sandbox

__all__ = [
    "SandboxConfig",
    "SandboxProcess",
    "SandboxStartError",
    "TlsMaterial",
    "create_app",
    "generate_tls_material",
    "running_sandbox",
]
