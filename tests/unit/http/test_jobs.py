"""JobApi: spec validation naming the field, round trips, and judging hand-built status answers (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from airflow_provider_integrations.connections.http_config import RetryPolicy
from airflow_provider_integrations.http.client import Response
from airflow_provider_integrations.http.errors import (
    AuthenticationError,
    RateLimitedError,
    ResponseContractError,
    ServerError,
)
from airflow_provider_integrations.http.jobs import JobApi, JobApiError, JobEvent, job_event
from airflow_provider_integrations.http.tracing import Timings

RETRY_ON = RetryPolicy().retry_on_statuses
URL_ = "https://api/jobs/1"
API = JobApi(
    submit_endpoint="/jobs",
    status_endpoint="/jobs/{job_id}",
    state_path="job.state",
    success_states=("DONE",),
    failure_states=("ERROR", "REJECTED"),
    cancelled_states=("CANCELLED",),
    pending_statuses=(404,),
    results_endpoint="/jobs/{job_id}/rows",
    results_pagination={"type": "page", "items_path": "rows"},
    cancel_endpoint="/jobs/{job_id}",
    cancel_method="delete",
)


def answer(status: int, doc: Any = None, headers: dict[str, str] | None = None) -> Response:
    body = b"" if doc is None else json.dumps(doc).encode()
    hdrs = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json", **(headers or {})}))
    return Response("GET", URL(URL_), status, hdrs, body, Timings(), 1)


@pytest.mark.parametrize(
    ("state", "kind"),
    [("DONE", "success"), ("ERROR", "failure"), ("REJECTED", "failure"), ("CANCELLED", "cancelled")],
)
def test_terminal_states(state: str, kind: str) -> None:
    outcome = API.judge(answer(200, {"job": {"state": state}}), RETRY_ON, URL_)
    assert (outcome.kind, outcome.state, outcome.document) == (kind, state, {"job": {"state": state}})


def test_unknown_state_is_running_and_retry_after_is_kept() -> None:
    outcome = API.judge(answer(200, {"job": {"state": "WARMING_UP"}}, {"Retry-After": "7"}), RETRY_ON, URL_)
    assert (outcome.kind, outcome.state, outcome.retry_after) == ("running", "WARMING_UP", 7.0)


def test_pending_status_means_running_without_a_state() -> None:
    outcome = API.judge(answer(404, {"error": "not yet"}, {"Retry-After": "2"}), RETRY_ON, URL_)
    assert (outcome.kind, outcome.state, outcome.retry_after) == ("running", "", 2.0)


@pytest.mark.parametrize(
    ("status", "error"), [(429, RateLimitedError), (503, ServerError), (403, AuthenticationError)]
)
def test_error_statuses_raise_the_typed_error(status: int, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        API.judge(answer(status, {"error": "x"}, {"Retry-After": "3"}), RETRY_ON, URL_)
    if status == 429:
        assert info.value.retry_after == 3.0  # type: ignore[attr-defined]


@pytest.mark.parametrize("doc", [{"job": {}}, {"status": "DONE"}, None, {"job": {"state": 3}}])
def test_a_status_document_without_a_state_is_a_broken_contract(doc: Any) -> None:
    """Polling a wrong state_path until the deadline would waste hours: fail at the first answer."""
    with pytest.raises(ResponseContractError, match=r"no state at state_path 'job\.state'"):
        API.judge(answer(200, doc), RETRY_ON, URL_)


def test_job_ids_are_quoted_into_one_path_segment() -> None:
    assert API.path(API.status_endpoint, "a/b?c=1") == "/jobs/a%2Fb%3Fc%3D1"


def test_job_id_from_the_submit_answer() -> None:
    api = JobApi(submit_endpoint="/jobs", status_endpoint="/jobs/{job_id}", job_id_path="data.jobId")
    assert api.job_id_from({"data": {"jobId": 42}}, answer(201)) == "42"
    with pytest.raises(ResponseContractError, match=r"no job id at job_id_path 'data\.jobId'"):
        api.job_id_from({"data": {}}, answer(201))


def test_spec_round_trip_and_normalisation() -> None:
    spec = API.to_spec()
    assert json.loads(json.dumps(spec)) == spec, "trigger kwargs must be JSON"
    assert JobApi.from_spec(spec) == API
    assert spec["cancel_method"] == "DELETE" and spec["success_states"] == ["DONE"]
    assert JobApi.from_spec(API) is API


BASE = {"submit_endpoint": "/j", "status_endpoint": "/j/{job_id}"}
NO_SUBMIT = {"status_endpoint": "/j/{job_id}"}
TYPO = {"submit_endpoint": "/j", "status_endpont": "/j/{job_id}"}


@pytest.mark.parametrize(
    ("spec", "path", "problem"),
    [
        (NO_SUBMIT, "job_api.submit_endpoint", "required"),
        (TYPO, "job_api.status_endpont", "did you mean 'status_endpoint'"),
        ({**BASE, "status_endpoint": "/j/{id}"}, "job_api.status_endpoint", "['id']"),
        ({**BASE, "status_endpoint": "/j"}, "job_api.status_endpoint", "lacks the {job_id}"),
        ({**BASE, "submit_endpoint": "/j/{job_id}"}, "job_api.submit_endpoint", "no placeholder"),
        ({**BASE, "state_path": "a[?"}, "job_api.state_path", "invalid JMESPath"),
        ({**BASE, "success_states": "done"}, "job_api.success_states", "expected a list"),
        ({**BASE, "failure_states": ["succeeded"]}, "job_api.failure_states", "also in success_states"),
        ({**BASE, "cancel_method": "SEND"}, "job_api.cancel_method", "expected one of"),
        ({**BASE, "pending_statuses": [200]}, "job_api.pending_statuses", "400-599"),
        ({**BASE, "results_pagination": {"type": "cursor"}}, "job_api.results_pagination", "without"),
        (
            {**BASE, "results_endpoint": "/r/{job_id}", "results_pagination": {"type": "pages"}},
            "job_api.results_pagination",
            "expected one of",
        ),
    ],
)
def test_bad_specs_name_the_field(spec: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(JobApiError) as info:
        JobApi.from_spec(spec)
    assert info.value.path == path
    assert problem in info.value.problem, info.value.problem


def test_event_builder_sets_every_key() -> None:
    event = job_event("deadline", "j1", "https://api/jobs/j1", cancel="sent", polls=3)
    assert set(event) == JobEvent.__required_keys__
    assert (event["status"], event["cancel"], event["polls"], event["fatal"], event["document"]) == (
        "deadline",
        "sent",
        3,
        False,
        None,
    )
