"""Harness for the Connections UI and CLI tests: a real ``airflow api-server`` and headless Chromium.

- :class:`ApiServer` runs ``airflow api-server`` as a child process on a free loopback port, on the test
  session's SQLite home (so the CLI reads what the browser saved), with ``[core] test_connection =
  Enabled`` and the simple auth manager. Its one user is an admin whose password is written to the
  passwords file before the start, so the browser goes through the real login page (no
  ``simple_auth_manager_all_admins``). Readiness is ``GET /api/v2/monitor/health``; the log goes to a file
  (never a pipe) that a startup failure quotes.
- ``ui`` drives Debian's ``chromium`` through Playwright's sync API (``executable_path``: nothing is
  downloaded), with a fresh profile, logged in once. Every request that is not for the API server is
  aborted and recorded; ``page`` fails a test that caused one, or an uncaught JavaScript error.

Both live for the ``tests/ui`` package only, so they are stopped before the rest of the session goes on.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, ViewportSize

SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
USERNAME = "ui-tester"
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TERMINATE_GRACE_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ApiServerError(RuntimeError):
    """The API server exited or did not become healthy in time; the message quotes its log."""


class ApiServer:
    """``airflow api-server`` as a child process, with one admin user of the simple auth manager."""

    def __init__(self, workdir: Path, *, startup_timeout: float = 90.0) -> None:
        self.workdir = workdir
        self.startup_timeout = startup_timeout
        self.username = USERNAME
        self.password = secrets.token_urlsafe(12)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / "api-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._token: str | None = None

    def environment(self) -> dict[str, str]:
        passwords = self.workdir / "simple_auth_manager_passwords.json"
        # The auth manager only generates passwords for users missing from this file.
        passwords.write_text(json.dumps({self.username: self.password}))
        return {
            **os.environ,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }

    def start(self) -> ApiServer:
        exe = str(Path(sys.executable).with_name("airflow"))
        cmd = [exe, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self._log = self.log_file.open("wb")
        self._proc = subprocess.Popen(
            cmd,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest must not reach it before stop() does
        )
        try:
            self._wait_healthy(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self, deadline: float) -> None:
        last = "no attempt made"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._fail(f"exited with code {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise self._fail(f"not healthy within {self.startup_timeout:.0f} s ({last})")

    def _fail(self, reason: str) -> ApiServerError:
        tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-40:])
        return ApiServerError(f"airflow api-server {reason}\n--- {self.log_file} (tail) ---\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(TERMINATE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- REST API, as the test user -----------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            status, body = self._send(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            assert status == 201, body
            self._token = str(body["access_token"])
        return self._token

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """``(status, parsed JSON body)`` of one call to the REST API with the test user's token."""
        return self._send(method, path, body, auth=True)

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None, *, auth: bool) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
                status = exc.code
        return status, json.loads(raw) if raw else None


@pytest.fixture(scope="package")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(tmp_path_factory.mktemp("api-server")) as server:
        yield server


# -- the browser ------------------------------------------------------------------------------------


@dataclass
class Ui:
    """The logged-in browser profile, and what it tried to reach besides the API server."""

    context: BrowserContext
    base_url: str
    blocked: list[str] = field(default_factory=list)

    def new_page(self) -> Page:
        return self.context.new_page()


def login(page: Page, server: ApiServer) -> None:
    """The real sign-in page of the simple auth manager, reached by opening a protected page."""
    page.goto(f"{server.url}/connections")
    page.wait_for_url("**/auth/login**")
    page.get_by_label("Username").fill(server.username)
    page.get_by_label("Password").fill(server.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/connections")


@pytest.fixture(scope="package")
def ui(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    from playwright.sync_api import Route, sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            device_scale_factor=1,
            locale="en-US",
            timezone_id="UTC",
            reduced_motion="reduce",
        )
        ui = Ui(context, api_server.url)

        def elsewhere(url: str) -> bool:
            return urlsplit(url).scheme in {"http", "https", "ws", "wss"} and not url.startswith(
                f"{api_server.url}/"
            )

        def block(route: Route) -> None:
            ui.blocked.append(route.request.url)
            route.abort()

        context.route(elsewhere, block)
        context.set_default_timeout(20_000)
        try:
            page = context.new_page()
            login(page, api_server)
            page.close()
            yield ui
        finally:
            context.close()


@pytest.fixture
def page(ui: Ui) -> Iterator[Page]:
    """A fresh tab of the logged-in profile; the test fails on a JavaScript error or a blocked request."""
    tab = ui.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    blocked_before = len(ui.blocked)
    yield tab
    tab.close()
    assert not errors, f"uncaught JavaScript errors: {errors}"
    assert ui.blocked[blocked_before:] == [], "the UI requested something other than the API server"


def screenshot(page: Page, name: str) -> Path:
    """Save ``docs/screenshots/<name>``; they are committed and shown in the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path
