"""Run the sandbox application on a socket, with optional TLS / mutual TLS."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from aiohttp import web

from airflow_provider_integrations.sandbox.app import SandboxConfig, create_app

READY_PREFIX = "sandbox listening on "

# In-flight /delay or /slow-body requests must not hold a SIGTERM for a minute.
SHUTDOWN_TIMEOUT_SECONDS = 1.0


def build_server_ssl_context(config: SandboxConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(config.tls_cert), str(config.tls_key))
    if config.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(config.client_ca))
    return context


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def start_sandbox(config: SandboxConfig) -> tuple[web.AppRunner, str]:
    """Start serving and return the runner (for cleanup) and the base URL without trailing slash."""
    runner = web.AppRunner(create_app(config), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=build_server_ssl_context(config))
        await site.start()
        port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    scheme = "https" if config.tls else "http"
    return runner, f"{scheme}://{_url_host(config.host)}:{port}"


@asynccontextmanager
async def running_sandbox(config: SandboxConfig | None = None) -> AsyncIterator[str]:
    """In-process sandbox for async code that does not want a child process."""
    runner, url = await start_sandbox(config or SandboxConfig())
    try:
        yield url
    finally:
        await runner.cleanup()


async def serve_until_signalled(config: SandboxConfig, announce: Callable[[str], None]) -> None:
    """Serve until SIGTERM/SIGINT, calling ``announce`` with the ready line once listening."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner, url = await start_sandbox(config)
    try:
        announce(f"{READY_PREFIX}{url}")
        await stop.wait()
    finally:
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
