"""Per-request timings: TTFB and total from the client's clock, DNS and connect/TLS from aiohttp tracing."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp


@dataclass(slots=True)
class Timings:
    """Milliseconds; ``connect`` includes the TLS handshake and is ``None`` on a reused connection."""

    start: float = 0.0
    dns: float | None = None
    connect: float | None = None
    ttfb: float | None = None
    total: float | None = None
    _dns_mark: float = 0.0
    _connect_mark: float = 0.0

    def as_dict(self) -> dict[str, float | None]:
        return {"dns_ms": self.dns, "connect_ms": self.connect, "ttfb_ms": self.ttfb, "total_ms": self.total}

    def __str__(self) -> str:
        # DNS/connect are known only when tracing is on (``detailed_timings``); None is "not measured".
        return ", ".join(
            f"{k.removesuffix('_ms')} {v:.1f} ms" for k, v in self.as_dict().items() if v is not None
        )


def _timings(ctx: SimpleNamespace) -> Timings | None:
    t = ctx.trace_request_ctx
    return t if isinstance(t, Timings) else None


def _now() -> float:
    import asyncio

    return asyncio.get_running_loop().time()


async def _on_dns_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timings(ctx)) is not None:
        t._dns_mark = _now()


async def _on_dns_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timings(ctx)) is not None:
        t.dns = (_now() - t._dns_mark) * 1000


async def _on_connect_start(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timings(ctx)) is not None:
        t._connect_mark = _now()


async def _on_connect_end(_s: Any, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timings(ctx)) is not None:
        t.connect = (_now() - t._connect_mark) * 1000 - (t.dns or 0.0)


def trace_config() -> aiohttp.TraceConfig:
    tc = aiohttp.TraceConfig()
    tc.on_dns_resolvehost_start.append(_on_dns_start)
    tc.on_dns_resolvehost_end.append(_on_dns_end)
    tc.on_connection_create_start.append(_on_connect_start)
    tc.on_connection_create_end.append(_on_connect_end)
    tc.freeze()
    return tc
