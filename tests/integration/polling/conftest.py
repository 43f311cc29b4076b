"""Fixtures for the polling tests: a connection to the sandbox, status jobs, request counts."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_integrations.http.polling import PollEvent
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger
from tests.conftest import ConnFactory

DONE = {"jmespath": "status", "equals": "done"}
FAILED = {"jmespath": "status", "in": ["failed", "cancelled"]}


def fetch(url: str, body: Any = None) -> Any:
    """Plain urllib: the sandbox's own bookkeeping must not go through the client under test."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def poll_conn(http_connection: ConnFactory, sandbox: SandboxProcess) -> str:
    return http_connection(f"poll_{uuid.uuid4().hex[:8]}", sandbox.url, circuit_failure_threshold=0)


@pytest.fixture
def status_job(sandbox: SandboxProcess) -> Callable[..., str]:
    """Create a sandbox status job and return its path (``/status-jobs/<id>``)."""

    def make(states: list[list[Any]], **body: Any) -> str:
        return str(fetch(f"{sandbox.url}/status-jobs", {"states": states, **body})["url"])

    return make


@pytest.fixture
def polls_of(sandbox: SandboxProcess) -> Callable[[str], int]:
    return lambda path: int(fetch(f"{sandbox.url}{path}/stats")["polls"])


@pytest.fixture
def requests_for(sandbox: SandboxProcess) -> Callable[[str], int]:
    """Requests the sandbox counted for a ``?key=`` (every attempt, before routing)."""
    return lambda key: int(fetch(f"{sandbox.url}/stats?key={key}")["key"]["requests"])


async def first_event(trigger: ApiPollTrigger) -> PollEvent:
    """Drive ``run()`` the way the triggerer does, to the first event."""
    async for event in trigger.run():
        payload: PollEvent = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")
