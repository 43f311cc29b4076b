"""``[integrations] triggerer_gc_freeze``: applied once, when the first trigger starts, only if enabled."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc
    from airflow_provider_integrations.triggers.http_poll import ApiPollTrigger

    async def main():
        before = gc.get_freeze_count()
        trigger = ApiPollTrigger(conn_id="missing_conn", endpoint="/x", poll_interval=1)
        async for event in trigger.run():
            assert event.payload["status"] == "error", event.payload
        after_first = gc.get_freeze_count()
        gc.unfreeze()
        async for event in ApiPollTrigger(conn_id="missing_conn", endpoint="/x", poll_interval=1).run():
            pass
        print(before, after_first > before, gc.get_freeze_count())

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(("setting", "frozen"), [("True", "True"), ("False", "False"), (None, "False")])
def test_gc_freeze_follows_the_setting_and_happens_once(
    airflow_db: object, monkeypatch: pytest.MonkeyPatch, setting: str | None, frozen: str
) -> None:
    if setting is None:
        monkeypatch.delenv("AIRFLOW__INTEGRATIONS__TRIGGERER_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__INTEGRATIONS__TRIGGERER_GC_FREEZE", setting)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out[-3:] == ["0", frozen, "0"], "frozen at the first trigger only, never again in the process"
