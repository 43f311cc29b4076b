"""Property-based fuzz of the running receiver: random ids, headers and bodies, some validly signed.

However malformed the request, the answer is a documented 2xx/4xx, never a 5xx, and the process
stays up. At least 2,000 requests are sent per store.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET, PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import PayloadCodec, Signer, new_callback_id
from tests.webhooks.conftest import (
    PAYLOAD_KEY,
    ReceiverProcess,
    expired_registration,
    make_store,
    registration,
)

REQUESTS = 2_100
DOCUMENTED = {200, 202, 400, 401, 404, 405, 413, 415}
SIGNERS = {
    "partner": Signer.from_secrets([PARTNER_WEBHOOK_SECRET]),
    "forged": Signer.from_secrets([FORGED_WEBHOOK_SECRET]),
}

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
json_bodies = json_values.map(lambda v: json.dumps(v).encode())
status_bodies = st.fixed_dictionaries({"status": st.sampled_from(["succeeded", "failed", 1])}).map(
    lambda v: json.dumps(v).encode()
)
bodies = st.one_of(
    json_bodies,
    status_bodies,
    status_bodies,
    st.binary(max_size=512),
    st.just(b""),
    st.integers(min_value=1024 * 1024 - 2, max_value=1024 * 1024 + 2).map(
        lambda n: b'"' + b"x" * (n - 2) + b'"'
    ),
)


async def _register(kind: str, where: str) -> dict[str, str]:
    store = make_store(kind, where, codec=PayloadCodec([PAYLOAD_KEY]))
    async with store:
        regs = {f"plain{i}": registration() for i in range(300)}
        regs |= {
            f"schema{i}": registration(schema={"type": "object", "required": ["status"]}) for i in range(100)
        }
        regs["expired"] = expired_registration()
        for reg in regs.values():
            await store.register(reg)
    await close_loop_listeners()
    await close_loop_pools()
    return {name: reg.callback_id for name, reg in regs.items()}


@st.composite
def fuzz_requests(draw: st.DrawFn, ids: dict[str, str]) -> dict[str, Any]:
    target = draw(st.sampled_from(["plain"] * 4 + ["schema"] * 2 + ["expired", "unknown", "garbage", "path"]))
    if target == "plain":
        path = "/callbacks/" + ids[f"plain{draw(st.integers(0, 299))}"]
    elif target == "schema":
        path = "/callbacks/" + ids[f"schema{draw(st.integers(0, 99))}"]
    elif target == "expired":
        path = "/callbacks/" + ids["expired"]
    elif target == "unknown":
        path = "/callbacks/" + new_callback_id()
    elif target == "garbage":
        path = "/callbacks/" + quote(draw(st.text(max_size=200)), safe="")
    else:
        path = "/" + quote(draw(st.text(max_size=40)), safe="/")
    body = draw(bodies)
    headers: dict[str, str] = {}
    signing = draw(st.sampled_from(["partner", "partner", "partner", "forged", "none"]))
    if signing != "none":
        webhook_id = draw(st.one_of(st.just(f"msg_{new_callback_id()}"), header_text.filter(bool)))
        skew = draw(st.sampled_from([0, 0, 0, -299, 299, -301, 301, -(10**6)]))
        headers.update(
            SIGNERS[signing].headers(body, webhook_id=webhook_id, timestamp=int(time.time()) + skew)
        )
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if draw(st.integers(0, 9)) == 0:  # now and then, garble or drop one header
            garbled = draw(st.none() | header_text)
            if garbled is None:
                headers.pop(name, None)
            else:
                headers[name] = garbled
    headers["Content-Type"] = draw(
        st.one_of(
            st.just("application/json"),
            st.just("application/json"),
            st.sampled_from(["application/json; charset=utf-8", "application/x+json", "text/plain", ""]),
            header_text,
        )
    )
    method = draw(st.sampled_from(["POST"] * 9 + ["GET", "PUT", "DELETE"]))
    return {"method": method, "path": path, "body": body, "headers": headers}


class Client:
    def __init__(self, url: str) -> None:
        self.netloc = urlsplit(url).netloc
        self.conn = http.client.HTTPConnection(self.netloc, timeout=30)

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> int | None:
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.reconnect()
                return response.status
            except (ConnectionError, http.client.HTTPException):
                self.reconnect()
                if attempt == 1 and len(body) > 1024 * 1024:
                    return None  # refused mid-upload of an oversized body: fine, not a 5xx
        raise AssertionError(f"receiver stopped answering: {method} {path}")

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.netloc, timeout=30)


def test_random_requests_never_get_a_5xx(served: tuple[str, str, ReceiverProcess]) -> None:
    kind, where, proc = served
    ids = asyncio.run(_register(kind, where))
    client = Client(proc.url)
    statuses: Counter[int | None] = Counter()

    @settings(
        max_examples=REQUESTS,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(request=fuzz_requests(ids))
    def one(request: dict[str, Any]) -> None:
        status = client.send(request["method"], request["path"], request["body"], request["headers"])
        statuses[status] += 1
        assert status is None or status in DOCUMENTED, (status, request["method"], request["path"])

    try:
        one()
    finally:
        client.conn.close()
    assert sum(statuses.values()) >= 2_000, statuses
    # The mix really exercised the receiver: accepted, refused and malformed requests all occurred.
    assert {200, 202, 400, 401, 404, 413, 415} <= set(statuses), statuses
    assert proc.health()["status"] == "ok"
    assert "Traceback" not in proc.stderr_text()
    print(f"fuzz {kind}: {dict(statuses)}")
