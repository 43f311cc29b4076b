"""The sandbox as a real child process: CLI contract, lifecycle and startup failures."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import (
    SandboxProcess,
    SandboxStartError,
    TlsMaterial,
    running_sandbox,
)

READY = re.compile(r"^sandbox listening on http://127\.0\.0\.1:(\d+)\n$")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_one_ready_line_and_exits_cleanly_on_signal(signum: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_integrations.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = READY.match(proc.stdout.readline())
        assert match, "first stdout line must be the ready line"
        assert int(match.group(1)) > 0
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "", "nothing but the ready line may be printed to stdout"


def test_cli_rejects_half_tls_configuration(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_integrations.sandbox", "--tls-cert", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert "tls_cert and tls_key must be given together" in result.stderr


def test_process_exposes_url_port_pid_and_terminates() -> None:
    process = SandboxProcess()
    with process:
        assert process.running
        assert process.url == f"http://127.0.0.1:{process.port}"
        assert not process.url.endswith("/")
        os.kill(process.pid, 0)  # raises if the child is not alive
    assert not process.running
    assert process.returncode == 0, "SIGTERM must lead to a clean exit"
    with pytest.raises(RuntimeError):
        _ = process.url


def test_start_failure_reports_child_stderr(tls_material: TlsMaterial, tmp_path: Path) -> None:
    broken = dataclasses.replace(tls_material, server_cert_file=tmp_path / "missing-cert.pem")
    with pytest.raises(SandboxStartError) as excinfo:
        SandboxProcess(tls=broken, startup_timeout=15).start()
    message = str(excinfo.value)
    assert "child stderr" in message
    assert "missing-cert.pem" in message or "No such file" in message


def test_client_cert_requirement_needs_tls() -> None:
    with pytest.raises(ValueError, match="tls"):
        SandboxProcess(require_client_cert=True)


async def test_in_process_runner_serves_the_same_app(http: aiohttp.ClientSession) -> None:
    async with running_sandbox() as url, http.get(f"{url}/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
