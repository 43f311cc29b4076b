"""The layered connection test shared by every connection type: timed layers, first failure stops.

A type's ``diagnose()`` walks its layers (DNS and TCP come from here; TLS, HTTP, login... from the type)
and returns a :class:`Diagnosis` whose one-line ``message`` is what the Airflow UI shows after **Test**:
``Connection OK: DNS 0.4 ms (10.0.0.5) | TCP 0.3 ms (10.0.0.5:443) | ...`` or the failure with a
remedy, followed by ``[passed: ...]`` so the user sees how far it got. No Airflow imports.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Layer:
    name: str
    ok: bool
    ms: float | None  # None: a fact read along the way (a server version), not a timed step
    detail: str = ""

    def __str__(self) -> str:
        timed = f"{self.name} {self.ms:.1f} ms" if self.ms is not None else self.name
        return f"{timed} ({self.detail})" if self.detail else timed


class Failed(Exception):
    """Raised by :meth:`Diagnosis.fail` to stop the walk; ``diagnose()`` catches it and returns."""


@dataclass(slots=True)
class Diagnosis:
    layers: list[Layer] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def message(self) -> str:
        passed = " | ".join(str(layer) for layer in self.layers if layer.ok)
        if self.failure is None:
            return f"Connection OK: {passed}"
        return self.failure + (f" [passed: {passed}]" if passed else "")

    def passed(self, name: str, t0: float | None, detail: str = "") -> None:
        """Record a layer that passed; ``t0`` is its ``time.perf_counter()`` start (None: untimed)."""
        self.layers.append(Layer(name, True, elapsed_ms(t0) if t0 is not None else None, detail))

    def fail(self, name: str, t0: float | None, message: str) -> Failed:
        """Record the failing layer and its message; ``raise result.fail(...)`` ends the walk."""
        self.layers.append(Layer(name, False, elapsed_ms(t0) if t0 is not None else None))
        self.failure = message
        return Failed(message)


def elapsed_ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def reason(exc: BaseException) -> str:
    """What went wrong, in the words people search for (the errno text, not asyncio's wrapper)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno and not isinstance(exc, ssl.SSLError):
        return os.strerror(exc.errno) if exc.errno > 0 else (exc.strerror or str(exc))
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__


async def resolve(host: str, port: int, timeout: float, result: Diagnosis) -> str:
    """The DNS layer: the first address of ``host``."""
    t0 = time.perf_counter()
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise result.fail("DNS", t0, f"DNS lookup failed for {host!r}: {why}: check the Host field") from None
    address = str(infos[0][4][0])
    result.passed("DNS", t0, address)
    return address


async def connect_tcp(
    address: str, port: int, timeout: float, result: Diagnosis, hint: Callable[[BaseException], str]
) -> None:
    """The TCP layer: open and close one connection; ``hint`` names the remedy for the error seen."""
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError) as exc:
        message = f"TCP connect to {address}:{port} failed: {reason(exc)}: {hint(exc)}"
        raise result.fail("TCP", t0, message) from None
    writer.close()
    await writer.wait_closed()
    result.passed("TCP", t0, f"{address}:{port}")
