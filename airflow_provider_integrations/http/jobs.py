"""Async-job APIs as data: how to submit, watch, cancel and read one kind of partner job.

A :class:`JobApi` is a frozen spec built once (from keyword arguments or a plain mapping, so it travels in
a trigger's kwargs and a serialized DAG)::

    JobApi(
        submit_endpoint="/jobs",                  # POST (submit_method) the job body here
        job_id_path="id",                         # JMESPath of the job id in the submit answer
        status_endpoint="/jobs/{job_id}",         # GET one status document
        state_path="state",                       # JMESPath of the state in it
        success_states=("succeeded",), failure_states=("failed",), cancelled_states=("cancelled",),
        results_endpoint="/jobs/{job_id}/results",                          # optional
        results_pagination={"type": "cursor", "cursor_path": "next_cursor", "items_path": "items"},
        cancel_endpoint="/jobs/{job_id}/cancel",  # optional; cancel_method POST
    )

Judging one status answer reuses :class:`.polling.PollRules`, so a pending status, a 429 with
``Retry-After``, a 5xx or a 403 mean the same for a job as for ``ApiPollSensor``. A state outside the three
sets means "still running"; a status document without any state is a broken contract (fatal), not a
reason to poll until the deadline.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypedDict
from urllib.parse import quote

import jmespath
from jmespath.exceptions import JMESPathError

from airflow_provider_integrations.exceptions import IntegrationError
from airflow_provider_integrations.http.errors import ResponseContractError
from airflow_provider_integrations.http.pagination import paginator_from_spec
from airflow_provider_integrations.http.polling import PollRules

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import Response

__all__ = ["JobApi", "JobApiError", "JobEvent", "JobOutcome", "JobStatus", "job_event"]

JobStatus = Literal["success", "failure", "cancelled", "timeout", "deadline", "error"]
CancelResult = Literal["", "sent", "already_terminal", "not_supported", "failed"]
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class JobApiError(IntegrationError, ValueError):
    """A job API spec is malformed; ``path`` names the field (``job_api.status_endpoint``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem))


class JobEvent(TypedDict):
    """Payload of the one event a ``JobStatusTrigger`` yields (and of the worker-side wait); all keys set."""

    status: JobStatus
    job_id: str
    url: str  # the status URL, without credentials or secret query values
    state: str  # the partner's last reported state ("" when none was read)
    polls: int
    elapsed: float
    http_status: int | None
    document: Any  # the last status document; None when above the size bound
    document_bytes: int
    truncated: bool
    excerpt: str
    reason: str
    error_type: str
    fatal: bool  # error: retrying the task cannot help
    cancel: CancelResult  # deadline: what the cancel request achieved


def job_event(status: JobStatus, job_id: str, url: str, **fields: Any) -> JobEvent:
    payload: JobEvent = {
        "status": status,
        "job_id": job_id,
        "url": url,
        "state": "",
        "polls": 0,
        "elapsed": 0.0,
        "http_status": None,
        "document": None,
        "document_bytes": 0,
        "truncated": False,
        "excerpt": "",
        "reason": "",
        "error_type": "",
        "fatal": False,
        "cancel": "",
    }
    payload.update(fields)  # type: ignore[typeddict-item]
    return payload


@dataclass(slots=True)
class JobOutcome:
    """One status answer judged: ``kind`` is "running", "success", "failure" or "cancelled"."""

    kind: Literal["running", "success", "failure", "cancelled"]
    state: str
    http_status: int
    document: Any = None
    retry_after: float | None = None


@dataclass(frozen=True)
class JobApi:
    """How one partner's submit / status / results / cancel calls look; see the module docstring."""

    submit_endpoint: str
    status_endpoint: str
    submit_method: str = "POST"
    job_id_path: str = "id"
    state_path: str = "state"
    success_states: tuple[str, ...] = ("succeeded",)
    failure_states: tuple[str, ...] = ("failed",)
    cancelled_states: tuple[str, ...] = ("cancelled",)
    pending_statuses: tuple[int, ...] = ()
    results_endpoint: str | None = None
    results_pagination: Mapping[str, Any] | None = None
    cancel_endpoint: str | None = None
    cancel_method: str = "POST"
    _rules: PollRules = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("success_states", "failure_states", "cancelled_states", "pending_statuses"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise JobApiError(f"job_api.{name}", f"expected a list, got {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        self._check_endpoint("submit_endpoint", self.submit_endpoint, placeholder=False)
        self._check_endpoint("status_endpoint", self.status_endpoint)
        for name in ("results_endpoint", "cancel_endpoint"):
            value = getattr(self, name)
            if value is not None:
                self._check_endpoint(name, value)
        for name in ("submit_method", "cancel_method"):
            method = getattr(self, name)
            if not isinstance(method, str) or method.upper() not in _METHODS:
                raise JobApiError(f"job_api.{name}", f"expected one of {sorted(_METHODS)}, got {method!r}")
            object.__setattr__(self, name, method.upper())
        for name in ("job_id_path", "state_path"):
            _check_jmespath(f"job_api.{name}", getattr(self, name))
        sets = {n: getattr(self, n) for n in ("success_states", "failure_states", "cancelled_states")}
        for name, states in sets.items():
            if not all(isinstance(s, str) and s for s in states):
                raise JobApiError(f"job_api.{name}", f"expected non-empty state strings, got {list(states)}")
        if not self.success_states:
            raise JobApiError("job_api.success_states", "expected at least one state")
        seen: dict[str, str] = {}
        for name, states in sets.items():
            for state in states:
                if state in seen:
                    raise JobApiError(f"job_api.{name}", f"state {state!r} is also in {seen[state]}")
                seen[state] = name
        if not all(isinstance(s, int) and 400 <= s <= 599 for s in self.pending_statuses):
            raise JobApiError("job_api.pending_statuses", "expected HTTP statuses 400-599")
        if self.results_pagination is not None:
            if self.results_endpoint is None:
                raise JobApiError("job_api.results_pagination", "given without results_endpoint")
            try:
                paginator_from_spec(self.results_pagination)
            except ValueError as exc:
                raise JobApiError("job_api.results_pagination", str(exc)) from None
            object.__setattr__(self, "results_pagination", dict(self.results_pagination))
        terminal_failures = [*self.failure_states, *self.cancelled_states]
        rules = PollRules.build(
            success_condition={"jmespath": self.state_path, "in": list(self.success_states)},
            failure_condition=(
                {"jmespath": self.state_path, "in": terminal_failures} if terminal_failures else None
            ),
            pending_statuses=self.pending_statuses,
        )
        object.__setattr__(self, "_rules", rules)

    @staticmethod
    def _check_endpoint(name: str, value: Any, *, placeholder: bool = True) -> None:
        if not isinstance(value, str):
            raise JobApiError(f"job_api.{name}", f"expected a path string, got {type(value).__name__}")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise JobApiError(f"job_api.{name}", f"malformed template {value!r}: {exc}") from None
        allowed = {"job_id"} if placeholder else set()
        if names - allowed:
            expected = "only the placeholder {job_id}" if placeholder else "no placeholder"
            raise JobApiError(
                f"job_api.{name}", f"{value!r} has {sorted(names - allowed)}; expected {expected}"
            )
        if placeholder and "job_id" not in names:
            raise JobApiError(f"job_api.{name}", f"{value!r} lacks the {{job_id}} placeholder")

    @classmethod
    def from_spec(cls, spec: JobApi | Mapping[str, Any]) -> JobApi:
        """Build from a mapping (unknown keys are errors naming the closest known one)."""
        if isinstance(spec, JobApi):
            return spec
        if not isinstance(spec, Mapping):
            raise JobApiError("job_api", f"expected a JobApi or a mapping, got {type(spec).__name__}")
        known = tuple(f.name for f in fields(cls) if f.init)
        for key in spec:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise JobApiError(f"job_api.{key}", f"unknown field{hint}")
        for key in ("submit_endpoint", "status_endpoint"):
            if key not in spec:
                raise JobApiError(f"job_api.{key}", "required")
        return cls(**spec)

    def to_spec(self) -> dict[str, Any]:
        """JSON-compatible form; ``JobApi.from_spec(api.to_spec()) == api``."""
        spec: dict[str, Any] = {}
        for f in fields(self):
            if f.init:
                value = getattr(self, f.name)
                spec[f.name] = list(value) if isinstance(value, tuple) else value
        if self.results_pagination is not None:
            spec["results_pagination"] = dict(self.results_pagination)
        return spec

    def path(self, template: str, job_id: str) -> str:
        # Quoted: a job id is partner data and must not add path segments or a query.
        return template.format(job_id=quote(job_id, safe=""))

    def job_id_from(self, document: Any, response: Response) -> str:
        found = jmespath.search(self.job_id_path, document)
        if isinstance(found, (str, int)) and not isinstance(found, bool) and str(found):
            return str(found)
        raise ResponseContractError(
            f"the submit answer has no job id at job_id_path {self.job_id_path!r} (found {found!r})",
            method=response.method,
            url=response.url,
            status=response.status,
        )

    def judge(self, response: Response, retry_on: frozenset[int], url: str) -> JobOutcome:
        """Classify one status answer; raises :class:`.HttpError` for error statuses and broken documents."""
        outcome = self._rules.judge(response, retry_on, url)
        if outcome.kind == "pending" and outcome.http_status in self._rules.pending:
            return JobOutcome("running", "", outcome.http_status, retry_after=outcome.retry_after)
        state = jmespath.search(self.state_path, outcome.document)
        if not isinstance(state, str) or not state:
            raise ResponseContractError(
                f"the status document has no state at state_path {self.state_path!r} (found {state!r})",
                method=response.method,
                url=url,
                status=response.status,
            )
        if outcome.kind == "success":
            return JobOutcome("success", state, outcome.http_status, outcome.document)
        if outcome.kind == "failure":
            kind: Literal["failure", "cancelled"] = (
                "cancelled" if state in self.cancelled_states else "failure"
            )
            return JobOutcome(kind, state, outcome.http_status, outcome.document)
        return JobOutcome("running", state, outcome.http_status, outcome.document, outcome.retry_after)


def _check_jmespath(path: str, expression: Any) -> None:
    if not isinstance(expression, str) or not expression.strip():
        raise JobApiError(path, "expected a non-empty JMESPath expression")
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        raise JobApiError(path, f"invalid JMESPath expression {expression!r}: {exc}") from None
