"""Polling decisions without I/O: what one status answer means, how long to wait, what the event says.

Shared by ``ApiPollTrigger`` (deferrable) and ``ApiPollSensor``'s poke and reschedule modes, so a
condition, a pending status or a 403 means the same in every mode. How an answer is judged:

- ``pending_statuses`` (e.g. ``[404]`` while the resource does not exist yet, or ``[403]`` while a
  grant propagates): "not yet".
- Other statuses >= 400 go through :func:`.errors.classify_status` with the connection's
  ``retry_on_statuses``: 429 and 5xx raise a :class:`RetriableError` (the poller waits the interval or
  ``Retry-After``, then polls again), any other 4xx raises a :class:`FatalError` (the poller stops:
  retrying cannot fix a revoked credential).
- 2xx: the document is checked against the failure condition first, then the success condition (none:
  any 2xx is success); otherwise "not yet". A ``Retry-After`` on a "not yet" answer is honoured.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import jmespath

from airflow_provider_integrations.http.conditions import explain, shared_predicate
from airflow_provider_integrations.http.errors import (
    EXCERPT_LIMIT,
    HttpError,
    classify_status,
    parse_retry_after,
)

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import Response

PollStatus = Literal["success", "failure", "timeout", "error"]


class PollEvent(TypedDict):
    """Payload of the one event an ``ApiPollTrigger`` yields; every key is always present."""

    status: PollStatus
    url: str  # without credentials or secret query values
    polls: int
    elapsed: float
    http_status: int | None
    # success: the (filtered) document; failure: the partner's document. None when above the size bound.
    document: Any
    document_bytes: int
    truncated: bool
    excerpt: str  # the start of the document's JSON when truncated, or of an error body
    reason: str
    error_type: str  # error: the exception class name
    fatal: bool  # error: retrying the task cannot help


@dataclass(slots=True)
class PollOutcome:
    """One answer judged: ``kind`` is "success", "failure" or "pending"."""

    kind: Literal["success", "failure", "pending"]
    url: str
    http_status: int
    document: Any = None
    reason: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class PollRules:
    """Compiled conditions of one poller; build with :meth:`build` (validates, names bad fields)."""

    success: Callable[[Any], bool] | None
    failure: Callable[[Any], bool] | None
    failure_condition: Mapping[str, Any] | None
    pending: frozenset[int]
    select: Callable[[Any], Any] | None

    @classmethod
    def build(
        cls,
        success_condition: Mapping[str, Any] | None = None,
        failure_condition: Mapping[str, Any] | None = None,
        pending_statuses: list[int] | tuple[int, ...] = (),
        response_filter: str | None = None,
    ) -> PollRules:
        return cls(
            # Shared predicates: a triggerer holds thousands of triggers of one task, one condition.
            success=shared_predicate(success_condition, "success_condition") if success_condition else None,
            failure=shared_predicate(failure_condition, "failure_condition") if failure_condition else None,
            failure_condition=failure_condition,
            pending=frozenset(pending_statuses),
            select=jmespath.compile(response_filter).search if response_filter else None,
        )

    def judge(self, response: Response, retry_on: frozenset[int], url: str) -> PollOutcome:
        """Classify one answer (``url``: already redacted); raises :class:`HttpError` for errors."""
        status = response.status
        headers = response.headers
        retry_after = parse_retry_after(headers.get("Retry-After")) if "Retry-After" in headers else None
        if status in self.pending:
            return PollOutcome("pending", url, status, retry_after=retry_after)
        if status >= 400:
            error = classify_status(
                status,
                method=response.method,
                url=url,
                headers=headers,
                body=response.body,
                retry_on=retry_on,
            )
            if error is not None:
                raise error
        document = _document(response)
        if self.failure is not None and self.failure(document):
            assert self.failure_condition is not None
            return PollOutcome("failure", url, status, document, explain(self.failure_condition, document))
        if self.success is None or self.success(document):
            return PollOutcome("success", url, status, self.select(document) if self.select else document)
        return PollOutcome("pending", url, status, document, retry_after=retry_after)


def _document(response: Response) -> Any:
    if not response.body:
        return None
    if "json" in response.headers.get("Content-Type", "") or response.body[:1] in (b"{", b"["):
        return response.json()  # malformed JSON raises ResponseContractError (fatal)
    return response.text


def poll_interval_for(poll: int, interval: float, factor: float, cap: float | None) -> float:
    """Seconds to wait after poll number ``poll`` (1-based): ``interval * factor**(poll-1)``, capped."""
    if factor == 1.0:
        return interval
    wait = interval * factor ** min(poll - 1, 64)  # the exponent bound keeps it finite
    return min(wait, cap) if cap is not None else wait


def polls_within(elapsed: float, interval: float, factor: float, cap: float | None) -> int:
    """The number of the poll due after ``elapsed`` seconds of waiting (reschedule mode restarts)."""
    if factor == 1.0:
        return int(elapsed // interval) + 1
    poll, spent = 1, 0.0
    while spent <= elapsed and poll < 10_000:
        spent += poll_interval_for(poll, interval, factor, cap)
        poll += 1
    return max(1, poll - 1)


def event(status: PollStatus, url: str, **fields: Any) -> PollEvent:
    payload: PollEvent = {
        "status": status,
        "url": url,
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
    }
    payload.update(fields)  # type: ignore[typeddict-item]
    return payload


def bounded(document: Any, limit: int) -> dict[str, Any]:
    """The event fields carrying ``document``: trigger events are stored in the metadata database."""
    raw = json.dumps(document, default=str, separators=(",", ":"))
    size = len(raw.encode())
    if size <= limit:
        return {"document": document, "document_bytes": size}
    return {"document": None, "document_bytes": size, "truncated": True, "excerpt": raw[:EXCERPT_LIMIT] + "…"}


def error_event(exc: HttpError, url: str, polls: int, *, fatal: bool) -> PollEvent:
    return event(
        "error",
        exc.url or url,
        polls=polls,
        http_status=exc.status,
        reason=str(exc.args[0]),
        error_type=type(exc).__name__,
        fatal=fatal,
        excerpt=exc.excerpt[:EXCERPT_LIMIT],
    )
