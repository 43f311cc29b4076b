"""Run the sandbox as a real child process, for tests that need a separate server.

A separate process (rather than an in-loop server) means the client under test
shares no event loop, no threads and no state with the server, exactly like a
real partner API.
"""

from __future__ import annotations

import os
import queue
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_integrations.sandbox.certs import TlsMaterial

_READY_LINE = re.compile(r"^sandbox listening on (https?://\S+?)/?$")
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERMINATE_GRACE_SECONDS = 5.0


class SandboxStartError(RuntimeError):
    """The child exited or did not become healthy in time; the message includes its stderr."""


class SandboxProcess:
    def __init__(
        self,
        *,
        tls: TlsMaterial | None = None,
        require_client_cert: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: int | None = None,
        startup_timeout: float = 20.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if require_client_cert and tls is None:
            raise ValueError("require_client_cert needs tls material")
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.host = host
        self.requested_port = port
        self.token_ttl = token_ttl
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._url: str | None = None
        self.returncode: int | None = None

    # -- public surface -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("sandbox is not running")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("sandbox is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "airflow_provider_integrations.sandbox"]
        cmd += ["--host", self.host, "--port", str(self.requested_port)]
        if self.tls is not None:
            cmd += ["--tls-cert", str(self.tls.server_cert_file), "--tls-key", str(self.tls.server_key_file)]
            if self.require_client_cert:
                cmd += ["--client-ca", str(self.tls.ca_cert_file)]
        if self.token_ttl is not None:
            cmd += ["--token-ttl", str(self.token_ttl)]
        return cmd + list(self.extra_args)

    def start(self) -> SandboxProcess:
        if self._proc is not None:
            raise RuntimeError("sandbox already started")
        env = dict(os.environ)
        # Works even when the package is not installed, e.g. from a plain checkout.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), env.get("PYTHONPATH")]))
        # stderr goes to a file, not a pipe, so a chatty child can never block on a full pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
        self._proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=self._stderr, env=env, text=True
        )
        try:
            deadline = time.monotonic() + self.startup_timeout
            self._url = self._read_ready_url(deadline)
            self._wait_healthy(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self._proc, self._url = self._proc, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(TERMINATE_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.returncode = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- startup helpers ------------------------------------------------------------------------

    def _fail(self, reason: str) -> SandboxStartError:
        proc = self._proc
        code = proc.poll() if proc is not None else None
        status = f"exited with code {code}" if code is not None else "still running"
        return SandboxStartError(
            f"sandbox failed to start: {reason} (child {status}; command: {' '.join(self.command())})\n"
            f"--- child stderr ---\n{self.stderr_text()}"
        )

    def _read_ready_url(self, deadline: float) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        stdout = self._proc.stdout

        def pump() -> None:
            # Keep draining after the ready line so later output cannot fill the pipe.
            for line in stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, name="sandbox-stdout", daemon=True).start()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"no ready line within {self.startup_timeout}s")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line == "":
                self._proc.wait(1)
                raise self._fail("child closed stdout before announcing its URL")
            match = _READY_LINE.match(line.strip())
            if match:
                return match.group(1)

    def _health_ssl_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        # Liveness only: trust is what the tests check, and an expired-cert
        # sandbox must still be able to start.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(self.tls.client_cert_file), str(self.tls.client_key_file))
        return context

    def _wait_healthy(self, deadline: float) -> None:
        context = self._health_ssl_context()
        last_error = "no attempt made"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._fail("child exited during startup")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1.0, context=context) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        raise self._fail(f"GET /health did not answer within {self.startup_timeout}s ({last_error})")
