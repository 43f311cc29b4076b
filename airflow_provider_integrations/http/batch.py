"""Send many items to a batch API: batches, bounded concurrency, per-item retries, a partial-failure
policy, progress lines, every item's outcome in a JSONL file, and a checkpoint that lets a crashed run
resume without sending an acknowledged batch again.

::

    async with lease_client(config) as api:
        run = BatchRun(api, items, BatchSettings(endpoint="/batch"), BatchStore(outcomes, checkpoint))
        summary = await run.run()

How it works:

- Items are cut into batches of ``batch_size`` in input order; batch ``n`` is the same on every try, which
  is what the checkpoint relies on. At most ``concurrency`` requests are in flight, through the
  connection's client (its rate limit, retries of whole requests, breaker and typed errors apply).
- Each per-item result is judged by :class:`.batch_rules.ItemRules`. Retriable items of a batch are sent
  again, alone, after an exponential backoff with jitter, up to ``max_attempts`` per item; a batch waiting
  for its retry holds no request slot, so other batches keep the partner busy.
- A whole request that still fails with a retriable error after the connection's own retries counts as
  one failed attempt of each of its items; a 4xx other than 401/403/404 rejects its items permanently;
  any other fatal error (credentials, a response without the results list) stops the run.
- When every item of a batch has a final outcome, the batch is committed (:mod:`.batch_store`). Once
  more items failed than the :class:`.batch_rules.FailurePolicy` allows, no new batch is started; the
  summary says how many items were not sent.
- With ``idempotency_prefix``, each request carries the key ``{prefix}-{batch}-{round}``: a partner that
  honours keys applies a re-sent request (a retry after a lost answer, or an unacknowledged batch after a
  crash) once. Without it, delivery of unacknowledged batches is at-least-once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

from airflow_provider_integrations.connections.http_config import RetryPolicy
from airflow_provider_integrations.http.batch_rules import (
    BatchConfigError,
    FailurePolicy,
    ItemRules,
    Progress,
    Verdict,
)
from airflow_provider_integrations.http.batch_store import BatchStore, Tally
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.errors import (
    ClientRequestError,
    ResponseContractError,
    RetriableError,
    excerpt_of,
)
from airflow_provider_integrations.http.retry import backoff_delay

_log = logging.getLogger(__name__)
_NO_RESULT = Verdict("retriable", None, "no result for this item in the response")


class Log(Protocol):
    """What the run logs through: a ``logging.Logger`` or an Airflow task's ``self.log``."""

    def info(self, msg: str, /, *args: Any) -> Any: ...
    def warning(self, msg: str, /, *args: Any) -> Any: ...


class BatchSummary(TypedDict):
    """What a batch run pushes to XCom; counts cover resumed batches too."""

    total: int
    succeeded: int
    failed: int
    failed_permanent: int
    failed_retriable: int
    retried: int  # items that needed more than one attempt
    not_sent: int  # items left out because the failure policy stopped the run
    requests: int  # requests of this try (whole-request retries by the connection not included)
    batches: int
    batches_resumed: int
    duration_s: float
    items_per_s: float  # this try's items over this try's time
    policy: str
    policy_violated: bool
    failure_reasons: dict[str, int]  # the 10 most frequent
    outcomes_path: str
    checkpoint_path: str


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How to send: endpoint, request shape, batch size, concurrency and per-item retries."""

    endpoint: str
    method: str = "POST"
    batch_size: int = 100
    concurrency: int = 4
    items_field: str = "items"
    extra_body: Mapping[str, Any] | None = None
    query: Mapping[str, str | int | float] | None = None
    max_attempts: int = 3
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    progress_interval: float = 30.0
    idempotency_prefix: str | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "concurrency", "max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BatchConfigError(name, f"an integer >= 1, got {value!r}")
        for name in ("retry_base_delay", "retry_max_delay", "progress_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise BatchConfigError(name, f"a number of seconds >= 0, got {value!r}")
        if not isinstance(self.items_field, str) or not self.items_field:
            raise BatchConfigError("items_field", "a non-empty string (the body key of the item list)")
        if self.extra_body is not None and (
            not isinstance(self.extra_body, Mapping) or self.items_field in self.extra_body
        ):
            raise BatchConfigError("extra_body", f"a mapping without the key {self.items_field!r}")


def _key(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


class BatchRun:
    """One run over ``items``; ``run()`` once. ``on_commit(batch)`` is called after each acknowledgement."""

    def __init__(
        self,
        client: HttpClient,
        items: Sequence[Any],
        settings: BatchSettings,
        store: BatchStore,
        *,
        rules: ItemRules | None = None,
        policy: FailurePolicy | None = None,
        log: Log | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.items = items
        self.settings = settings
        self.store = store
        self.rules = (rules or ItemRules()).compile()
        self.policy = policy or FailurePolicy()
        self.log: Log = log or _log
        self.on_commit = on_commit
        self._retry = RetryPolicy(base_delay=settings.retry_base_delay, max_delay=settings.retry_max_delay)
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._clock = asyncio.get_running_loop().time
        self._ids, self._keys = self._validate_ids()
        self.tally = Tally()
        self._progress = Progress(len(self._ids), 0, 0.0, settings.progress_interval)
        self.requests = 0
        # Failures decided, committed or not: the policy must stop the next batch before a commit lands.
        self._failed = 0
        self._error: BaseException | None = None
        self._stopped = False

    def _validate_ids(self) -> tuple[list[Any], list[str]]:
        ids = list(map(self.rules.item_id, self.items))
        # Fast path for the usual case (string ids, all distinct); the loop below finds the culprit.
        if all(type(v) is str for v in ids) and len(set(ids)) == len(ids):
            return ids, ids
        keys, seen = [], set()
        for index, value in enumerate(ids):
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise BatchConfigError(f"items[{index}]", "an object with a string or integer id")
            key = _key(value)
            if key in seen:
                raise BatchConfigError(f"items[{index}]", f"a unique id, but {value!r} appears before")
            seen.add(key)
            keys.append(key)
        return ids, keys

    def fingerprint(self) -> str:
        doc = json.dumps([self.settings.batch_size, self._keys], separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()

    async def run(self, *, fresh: bool = False) -> BatchSummary:
        """Send every batch the checkpoint does not acknowledge; ``fresh`` discards earlier files."""
        total, size = len(self._ids), self.settings.batch_size
        batches = math.ceil(total / size)
        started = self._clock()
        resumed = self.store.open(self.fingerprint(), fresh=fresh)
        try:
            self.tally = resumed.tally
            self._failed = self.tally.failed
            self._progress = Progress(total, self.tally.done, started, self.settings.progress_interval)
            if resumed.acked:
                self.log.info(
                    "Resuming: %d of %d batches (%d items) were acknowledged by an earlier try",
                    len(resumed.acked),
                    batches,
                    self.tally.done,
                )
            await self._drive([b for b in range(batches) if b not in resumed.acked])
        finally:
            self.store.close()
        now = self._clock()
        self.log.info("Finished: %s", self._progress.line(now, self.tally.failed, self.tally.retried))
        return self._summary(total, batches, len(resumed.acked), now - started)

    def _violated(self) -> bool:
        if not self._stopped and self.policy.violated(self._failed, len(self._ids)):
            self._stopped = True
            self.log.warning(
                "%d items failed, the policy allows %s: no further batch is started",
                self._failed,
                self.policy.describe(len(self._ids)),
            )
        return self._stopped

    async def _drive(self, pending: list[int]) -> None:
        # More batches open than request slots: a batch waiting out its retry backoff holds no slot.
        window = asyncio.Semaphore(self.settings.concurrency * 4)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            window.release()
            if not task.cancelled() and task.exception() is not None and self._error is None:
                self._error = task.exception()

        try:
            for batch in pending:
                await window.acquire()
                if self._error is not None or self._violated():
                    window.release()
                    break
                task = asyncio.create_task(self._send_batch(batch))
                running.add(task)
                task.add_done_callback(finished)
            while running:
                await asyncio.wait(set(running))
        except BaseException:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        if self._error is not None:
            raise self._error
        self._violated()

    async def _send_batch(self, batch: int) -> None:
        size, max_attempts, keys = self.settings.batch_size, self.settings.max_attempts, self._keys
        first, end = batch * size, min(len(self._ids), (batch + 1) * size)
        pending = {keys[i]: i for i in range(first, end)}
        attempts: dict[str, int] = {}
        final: dict[int, dict[str, Any]] = {}
        round_ = 0
        while pending:
            if round_:
                await asyncio.sleep(backoff_delay(self._retry, round_))
            indexes = list(pending.values())
            verdicts = await self._attempt(batch, round_, indexes)
            if verdicts is None:
                return  # stopped before this batch was sent: it stays unacknowledged
            for index, (verdict, result) in zip(indexes, verdicts, strict=True):
                key = keys[index]
                n = attempts[key] = attempts.get(key, 0) + 1
                kind = verdict.kind
                if kind == "retriable" and n < max_attempts:
                    continue
                del pending[key]
                outcome: dict[str, Any] = {"id": self._ids[index], "batch": batch, "attempts": n}
                if kind == "success":
                    outcome["outcome"] = "succeeded"
                else:
                    self._failed += 1
                    outcome["outcome"] = "failed"
                    retriable = outcome["retriable"] = kind == "retriable"
                    outcome["error"] = verdict.reason + (" (attempts exhausted)" if retriable else "")
                outcome["status"] = verdict.status
                if result is not None:
                    outcome["result"] = result
                final[index] = outcome
            round_ += 1
        lines = [final[i] for i in range(first, end)]  # input order
        await self.store.commit(batch, lines)
        for outcome in lines:
            self.tally.add(outcome)
        now = self._clock()
        if self._progress.advance(len(lines), now):
            self.log.info("%s", self._progress.line(now, self.tally.failed, self.tally.retried))
        if self.on_commit is not None:
            self.on_commit(batch)

    async def _attempt(self, batch: int, round_: int, indexes: list[int]) -> list[tuple[Verdict, Any]] | None:
        s = self.settings
        body = dict(s.extra_body or {})
        body[s.items_field] = [self.items[i] for i in indexes]
        key = f"{s.idempotency_prefix}-{batch}-{round_}" if s.idempotency_prefix else None
        async with self._slots:
            # Batches queue for a slot; one whose turn comes after the run stopped is not started.
            if round_ == 0 and (self._error is not None or self._violated()):
                return None
            self.requests += 1
            try:
                response = await self.client.request(
                    s.method, s.endpoint, params=s.query, json=body, idempotency_key=key
                )
            except RetriableError as exc:
                return [(Verdict("retriable", exc.status, f"request failed: {exc}"), None)] * len(indexes)
            except ClientRequestError as exc:
                return [(Verdict("permanent", exc.status, f"batch rejected: {exc}"), None)] * len(indexes)
        results = self.rules.results(response.json())
        if not isinstance(results, list):
            raise ResponseContractError(
                f"batch response has no list of per-item results at {self.rules.results_expression!r}",
                method=response.method,
                url=response.url,
                status=response.status,
                excerpt=excerpt_of(response.body),
            )
        by_key: dict[str, Any] = {}
        for result in results:
            value = self.rules.result_id(result)
            if isinstance(value, (str, int)):
                by_key[_key(value)] = result
        verdicts: list[tuple[Verdict, Any]] = []
        for index in indexes:
            result = by_key.get(self._keys[index])
            verdicts.append((_NO_RESULT, None) if result is None else (self.rules.judge(result), result))
        return verdicts

    def _summary(self, total: int, batches: int, resumed: int, duration: float) -> BatchSummary:
        t = self.tally
        done_now = t.done - self._progress.resumed
        return {
            "total": total,
            "succeeded": t.succeeded,
            "failed": t.failed,
            "failed_permanent": t.failed_permanent,
            "failed_retriable": t.failed_retriable,
            "retried": t.retried,
            "not_sent": total - t.done,
            "requests": self.requests,
            "batches": batches,
            "batches_resumed": resumed,
            "duration_s": round(duration, 3),
            "items_per_s": round(done_now / duration, 1) if duration > 0 else 0.0,
            "policy": self.policy.describe(total),
            "policy_violated": self.policy.violated(t.failed, total),
            "failure_reasons": dict(t.reasons.most_common(10)),
            "outcomes_path": str(self.store.outcomes_path),
            "checkpoint_path": str(self.store.checkpoint_path),
        }
