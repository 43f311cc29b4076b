"""Fixtures for the example DAG tests: the demo runner as a module, and the example connections.

The tests call the runner's own functions (:func:`run_one` and friends), so a green test run means the
demo works the same way.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_provider_integrations.sandbox.certs import TlsMaterial
from airflow_provider_integrations.sandbox.connections import as_environment, example_connections
from airflow_provider_integrations.sandbox.process import SandboxProcess

RUNNER_PATH = Path(__file__).resolve().parents[2] / "scripts" / "run_examples.py"


def load_runner() -> ModuleType:
    """Import ``scripts/run_examples.py`` (not a package) once, under the name ``run_examples``."""
    module = sys.modules.get("run_examples")
    if module is None:
        spec = importlib.util.spec_from_file_location("run_examples", RUNNER_PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Registered before execution: dataclasses resolve their module through sys.modules.
        sys.modules["run_examples"] = module
        spec.loader.exec_module(module)
    return module


RUNNER = load_runner()


@pytest.fixture(scope="session")
def blackhole() -> Iterator[Any]:
    with RUNNER.Blackhole() as hole:
        yield hole


@pytest.fixture(scope="session")
def webhook_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with RUNNER.webhook_receiver(tmp_path_factory.mktemp("webhooks")) as env:
        yield env


@pytest.fixture(scope="session")
def example_env(
    airflow_db: Path,
    sandbox: SandboxProcess,
    sandbox_tls: SandboxProcess,
    tls_material: TlsMaterial,
    blackhole: Any,
    webhook_env: dict[str, str],
) -> dict[str, str]:
    """The whole environment of a ``run_one`` child: the test Airflow home, every example connection and
    the webhook receiver's settings."""
    conns = example_connections(sandbox.url, sandbox_tls.url, tls_material, blackhole_url=blackhole.url)
    return {**os.environ, **as_environment(conns), **webhook_env}
