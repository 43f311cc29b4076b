"""Batch API decisions without I/O: what a per-item result means, the partial-failure policy, progress.

Classification rules are data (JMESPath expressions and status values), so they travel in an operator's
arguments and a serialized DAG. How one per-item result is judged by :class:`ItemRules`:

- its status value is listed in ``success`` -> success, in ``retriable`` -> retriable;
- otherwise an integer status is read as a per-item HTTP status (2xx success; 408, 425, 429 and 5xx
  retriable; anything else permanent), which covers APIs such as Salesforce composite or Google batch;
- anything else (an unknown word, a missing status) is a permanent failure: guessing "retry" would hammer
  the partner with items it will never accept;
- an item the response does not mention at all is retriable (the partner dropped it).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError

from airflow_provider_integrations.exceptions import IntegrationError

Kind = Literal["success", "retriable", "permanent"]
Getter = Callable[[Any], Any]
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RETRIABLE_HTTP = frozenset({408, 425, 429})


class BatchConfigError(IntegrationError, ValueError):
    """A batch setting or an input item is invalid; ``field`` names it (``item_rules.success``)."""

    def __init__(self, field: str, expected: str) -> None:
        self.field = field
        self.expected = expected
        super().__init__(f"{field}: expected {expected}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.expected))


def getter(expression: str, field: str) -> Getter:
    """A compiled JMESPath lookup; a plain key skips JMESPath, which costs microseconds per item."""
    if not isinstance(expression, str) or not expression:
        raise BatchConfigError(field, "a non-empty JMESPath expression")
    if _PLAIN_KEY.fullmatch(expression):
        return lambda doc: doc.get(expression) if isinstance(doc, dict) else None
    try:
        return jmespath.compile(expression).search
    except JMESPathError as exc:
        raise BatchConfigError(field, f"a valid JMESPath expression ({exc})") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    status: Any = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ItemRules:
    """Where the per-item results are in a batch response, and what their status values mean.

    :param item_id: JMESPath to an input item's id (unique, a string or an integer).
    :param results: JMESPath from the response document to the list of per-item results.
    :param result_id: JMESPath within one result to the id of the item it answers.
    :param status: JMESPath within one result to its status value.
    :param error: JMESPath within one result to a readable reason, or ``None``.
    :param success: status values meaning the item was accepted.
    :param retriable: status values meaning "send this item again later".
    """

    item_id: str = "id"
    results: str = "results"
    result_id: str = "id"
    status: str = "status"
    error: str | None = "error"
    success: tuple[str | int, ...] = ("ok", "success", "succeeded", "created", "accepted")
    retriable: tuple[str | int, ...] = ("retry", "retriable", "throttled", "unavailable", "timeout")

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any] | None, field: str = "item_rules") -> ItemRules:
        if spec is None:
            return cls()
        if not isinstance(spec, Mapping):
            raise BatchConfigError(field, "a mapping of rule names to values")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise BatchConfigError(f"{field}.{unknown[0]}", f"one of {sorted(known)}")
        values = dict(spec)
        for name in ("success", "retriable"):
            if name in values:
                raw = values[name]
                ok = isinstance(raw, (list, tuple)) and all(
                    isinstance(v, (str, int)) and not isinstance(v, bool) for v in raw
                )
                if not ok:
                    raise BatchConfigError(f"{field}.{name}", "a list of strings or integers")
                values[name] = tuple(raw)
        rules = cls(**values)
        rules.compile(field)
        return rules

    def compile(self, field: str = "item_rules") -> CompiledRules:
        overlap = set(self.success) & set(self.retriable)
        if overlap:
            raise BatchConfigError(
                f"{field}.retriable", f"no value also listed in success ({sorted(overlap)})"
            )
        return CompiledRules(
            known={v: Verdict("success", v) for v in self.success},
            item_id=getter(self.item_id, f"{field}.item_id"),
            results=getter(self.results, f"{field}.results"),
            result_id=getter(self.result_id, f"{field}.result_id"),
            status=getter(self.status, f"{field}.status"),
            error=None if self.error is None else getter(self.error, f"{field}.error"),
            success=frozenset(self.success),
            retriable=frozenset(self.retriable),
            results_expression=self.results,
        )


@dataclass(frozen=True, slots=True)
class CompiledRules:
    known: dict[str | int, Verdict]  # the listed success values: most answers, judged by one lookup
    item_id: Getter
    results: Getter
    result_id: Getter
    status: Getter
    error: Getter | None
    success: frozenset[str | int]
    retriable: frozenset[str | int]
    results_expression: str

    def judge(self, result: Any) -> Verdict:
        status = self.status(result)
        try:
            return self.known[status]
        except (KeyError, TypeError):  # TypeError: an unhashable status (a list, an object)
            pass
        if not isinstance(status, (str, int)):
            return Verdict("permanent", None, f"no usable status in the result ({type(status).__name__})")
        if status in self.success:
            return Verdict("success", status)
        reason = self._reason(result, status)
        if status in self.retriable:
            return Verdict("retriable", status, reason)
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
            if 200 <= status < 300:
                return Verdict("success", status)
            if status in _RETRIABLE_HTTP or status >= 500:
                return Verdict("retriable", status, reason)
        return Verdict("permanent", status, reason)

    def _reason(self, result: Any, status: Any) -> str:
        found = self.error(result) if self.error is not None else None
        if found is None:
            return f"status {status!r}"
        return found if isinstance(found, str) else json.dumps(found, default=str)


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """How many items may fail before the run is a failure; ``None`` for both tolerates any number.

    The tighter of the two limits applies. Failures only grow, so a run stops sending as soon as the
    limit is exceeded rather than at the end.
    """

    max_failed: int | None = None
    max_failed_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.max_failed is not None and (
            isinstance(self.max_failed, bool) or not isinstance(self.max_failed, int) or self.max_failed < 0
        ):
            raise BatchConfigError("max_failed", f"an integer >= 0 or None, got {self.max_failed!r}")
        ratio = self.max_failed_ratio
        if ratio is not None and (
            isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0
        ):
            raise BatchConfigError("max_failed_ratio", f"a number between 0 and 1 or None, got {ratio!r}")

    def allowed(self, total: int) -> int | None:
        limits = [self.max_failed] if self.max_failed is not None else []
        if self.max_failed_ratio is not None:
            limits.append(math.floor(self.max_failed_ratio * total + 1e-9))
        return min(limits) if limits else None

    def violated(self, failed: int, total: int) -> bool:
        allowed = self.allowed(total)
        return allowed is not None and failed > allowed

    def describe(self, total: int) -> str:
        allowed = self.allowed(total)
        return "any number of failed items" if allowed is None else f"at most {allowed} failed items"


class Progress:
    """Done/total, rate and ETA for periodic log lines; the rate counts this run's items only."""

    def __init__(self, total: int, done: int, started: float, interval: float) -> None:
        self.total = total
        self.resumed = done
        self.done = done
        self.started = started
        self.interval = interval
        self._next = started + interval

    def advance(self, items: int, now: float) -> bool:
        """Count ``items`` more done; ``True`` when a progress line is due."""
        self.done += items
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def rate(self, now: float) -> float:
        elapsed = now - self.started
        return (self.done - self.resumed) / elapsed if elapsed > 0 else 0.0

    def line(self, now: float, failed: int, retried: int) -> str:
        rate = self.rate(now)
        left = self.total - self.done
        eta = f"{left / rate:.0f} s" if rate > 0 else "unknown"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.done}/{self.total} items ({pct:.1f}%), {rate:.0f} items/s, ETA {eta}; "
            f"{failed} failed, {retried} retried"
        )
