"""A receiver killed right after answering 202 loses nothing: 202 is sent only after the commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from tests.webhooks.conftest import (
    SECRETS,
    ReceiverProcess,
    make_store,
    pg_schema,
    registration,
    signed,
    store_url,
)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "callbacks.db")
        return
    with pg_schema("whkill") as name:
        yield "postgres", name


async def test_sigkill_right_after_202_loses_no_accepted_callback(location: tuple[str, str]) -> None:
    kind, where = location
    async with make_store(kind, where) as store:  # creates the tables before the receiver starts
        regs = [registration() for _ in range(300)]
        for reg in regs:
            await store.register(reg)
    proc = ReceiverProcess(store_url(kind, where), SECRETS).start()
    accepted: list[str] = []
    killed = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:

            async def deliver(callback_id: str) -> None:
                body, headers = signed({"callback": callback_id})
                try:
                    async with http.post(
                        f"{proc.url}/callbacks/{callback_id}", data=body, headers=headers
                    ) as r:
                        if r.status == 202 and not killed.is_set():
                            accepted.append(callback_id)
                            if len(accepted) == 25:
                                killed.set()
                                proc.kill()  # no shutdown code runs, at once
                except aiohttp.ClientError:
                    pass  # in flight when the process died: not acknowledged, so not promised

            await asyncio.gather(*(deliver(reg.callback_id) for reg in regs))
    finally:
        proc.close()
    assert killed.is_set() and len(accepted) >= 25
    assert len(accepted) < len(regs)  # the kill really interrupted the stream

    async with make_store(kind, where) as reopened:
        for callback_id in accepted:
            delivery = await reopened.delivery(callback_id)
            assert delivery is not None and delivery.payload == {"callback": callback_id}
    await close_loop_listeners()
    await close_loop_pools()
