"""How one status answer is judged (http/polling.py): a pure function of status, headers and body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from airflow_provider_integrations.http.client import Response
from airflow_provider_integrations.http.errors import (
    AuthenticationError,
    ClientRequestError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    ResponseContractError,
    ServerError,
)
from airflow_provider_integrations.http.polling import (
    PollRules,
    bounded,
    event,
    poll_interval_for,
    polls_within,
)
from airflow_provider_integrations.http.tracing import Timings

RETRY_ON = frozenset({429, 500, 502, 503, 504})
RULES = PollRules.build(
    success_condition={"jmespath": "status", "equals": "done"},
    failure_condition={"jmespath": "status", "in": ["failed", "cancelled"]},
    pending_statuses=[404],
    response_filter="result",
)


def answer(status: int, body: Any = None, **headers: str) -> Response:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    if body is not None and not isinstance(body, bytes):
        headers.setdefault("Content-Type", "application/json")
    hdrs = CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))
    return Response("GET", URL("http://partner/jobs/1?token=s3cret"), status, hdrs, raw, Timings(), 1)


def judge(response: Response, rules: PollRules = RULES) -> Any:
    return rules.judge(response, RETRY_ON, "http://partner/jobs/1?token=***")


@pytest.mark.parametrize(
    ("response", "kind", "document"),
    [
        (answer(200, {"status": "done", "result": {"rows": 3}}), "success", {"rows": 3}),
        (answer(200, {"status": "running"}), "pending", {"status": "running"}),
        (answer(202, {"status": "queued"}, Retry_After="7"), "pending", {"status": "queued"}),
        (answer(200, {"status": "failed", "e": "quota"}), "failure", {"status": "failed", "e": "quota"}),
        (answer(404, {"error": "not yet"}), "pending", None),
    ],
)
def test_answers(response: Response, kind: str, document: Any) -> None:
    outcome = judge(response)
    assert (outcome.kind, outcome.document) == (kind, document)
    assert outcome.url.endswith("token=***")


def test_failure_is_checked_first_and_explained() -> None:
    both = PollRules.build({"jmespath": "done"}, {"jmespath": "error"})
    outcome = judge(answer(200, {"done": True, "error": "disk full"}), both)
    assert outcome.kind == "failure" and outcome.reason == 'error is truthy (found "disk full")'


def test_retry_after_is_kept_on_pending_answers() -> None:
    assert judge(answer(202, {"status": "queued"}, Retry_After="7")).retry_after == 7.0
    assert judge(answer(200, {"status": "running"})).retry_after is None


@pytest.mark.parametrize(
    ("status", "error", "retriable"),
    [
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (410, NotFoundError, False),
        (400, ClientRequestError, False),
        (501, FatalError, False),  # not in the connection's retry_on_statuses
        (429, RateLimitedError, True),
        (503, ServerError, True),
    ],
)
def test_error_statuses(status: int, error: type[Exception], retriable: bool) -> None:
    with pytest.raises(error) as info:
        judge(answer(status, {"error": "x"}, Retry_After="2"))
    assert type(info.value) is error and info.value.retriable is retriable  # type: ignore[attr-defined]
    assert "s3cret" not in str(info.value) and "token=***" in str(info.value)
    if retriable:
        assert info.value.retry_after == 2.0  # type: ignore[attr-defined]


def test_403_can_be_declared_pending() -> None:
    rules = PollRules.build(pending_statuses=[403])
    assert judge(answer(403, {"error": "grant propagating"}), rules).kind == "pending"


def test_bodies() -> None:
    anything = PollRules.build()
    assert judge(answer(204), anything).kind == "success", "no success condition: any 2xx"
    assert judge(answer(200, b"ready", Content_Type="text/plain"), anything).document == "ready"
    with pytest.raises(ResponseContractError):
        judge(answer(200, b'{"status": "do', Content_Type="application/json"))


def test_schedule_and_event_helpers() -> None:
    assert [poll_interval_for(n, 1.0, 2.0, 5.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert [polls_within(t, 1.0, 2.0, None) for t in (0, 0.5, 1.0, 2.9, 3.1, 7.5)] == [1, 1, 2, 2, 3, 4]
    assert polls_within(10.0, 2.0, 1.0, None) == 6
    assert bounded({"a": 1}, 100) == {"document": {"a": 1}, "document_bytes": 7}
    big = bounded({"a": "x" * 5000}, 100)
    assert big["document"] is None and big["truncated"] and len(big["excerpt"]) == 1001
    payload = event("timeout", "u", polls=3)
    assert payload["status"] == "timeout" and payload["polls"] == 3 and payload["fatal"] is False
    json.dumps(payload)  # trigger events must serialize
