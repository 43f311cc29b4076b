"""Callback ids, URLs and the record that binds a callback to one task try.

A callback id is 32 random bytes (``secrets.token_urlsafe``): unguessable, so knowing the URL of one task
try tells nothing about any other. The id is not the credential, though: every request must also carry a
valid signature made with the secret the registration names.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import jsonschema
from yarl import URL

from airflow_provider_integrations.webhooks.errors import WebhookConfigError

__all__ = ["CallbackRegistration", "callback_url", "is_callback_id", "new_callback_id"]

CALLBACK_ID_BYTES: Final = 32
CALLBACKS_PATH: Final = "/callbacks/"
# token_urlsafe(32) gives 43 characters; ids of other lengths (tests, imports) are accepted in a range.
_CALLBACK_ID = re.compile(r"[A-Za-z0-9_-]{22,128}")
# Airflow connection ids and environment variable names both fit.
_SECRET_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,250}")


def new_callback_id() -> str:
    return secrets.token_urlsafe(CALLBACK_ID_BYTES)


def is_callback_id(text: str) -> bool:
    """Whether ``text`` has the shape of a callback id (cheap; run before any store lookup)."""
    return _CALLBACK_ID.fullmatch(text) is not None


def callback_url(base_url: str, callback_id: str) -> str:
    """``{base_url}/callbacks/{callback_id}``; ``base_url`` is the receiver's public http(s) URL."""
    url = URL(base_url) if isinstance(base_url, str) else None
    if url is None or url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise WebhookConfigError(
            "base_url", "an absolute http(s) URL without query or fragment", value=base_url
        )
    if not is_callback_id(callback_id):
        raise WebhookConfigError("callback_id", "22 to 128 characters of [A-Za-z0-9_-]", value=callback_id)
    return base_url.rstrip("/") + CALLBACKS_PATH + callback_id


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise WebhookConfigError(name, "a timezone-aware datetime", value=value)
    return value.astimezone(timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class CallbackRegistration:
    """One expected callback, bound to a task try (``map_index`` -1 for an unmapped task).

    ``secret_name`` names the secret that requests must be signed with (an Airflow connection id, an
    environment variable...): the receiver resolves it; the record never holds the secret. ``schema``
    is an optional JSON Schema the payload must satisfy.
    """

    callback_id: str
    dag_id: str
    run_id: str
    task_id: str
    expires_at: datetime
    secret_name: str
    map_index: int = -1
    try_number: int = 1
    schema: Mapping[str, Any] | None = field(default=None, hash=False)
    created_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        if not isinstance(self.callback_id, str) or not is_callback_id(self.callback_id):
            raise WebhookConfigError(
                "callback_id", "22 to 128 characters of [A-Za-z0-9_-]", value=self.callback_id
            )
        for name in ("dag_id", "run_id", "task_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > 250:
                raise WebhookConfigError(name, "a non-empty string of at most 250 characters", value=value)
        if not isinstance(self.secret_name, str) or not _SECRET_NAME.fullmatch(self.secret_name):
            raise WebhookConfigError(
                "secret_name", "1 to 250 characters of [A-Za-z0-9_.:-]", value=self.secret_name
            )
        if not isinstance(self.map_index, int) or self.map_index < -1:
            raise WebhookConfigError("map_index", "an integer >= -1", value=self.map_index)
        if not isinstance(self.try_number, int) or self.try_number < 0:
            raise WebhookConfigError("try_number", "an integer >= 0", value=self.try_number)
        object.__setattr__(self, "expires_at", _utc(self.expires_at, "expires_at"))
        object.__setattr__(self, "created_at", _utc(self.created_at, "created_at"))
        if self.schema is not None:
            # A private deep copy: the caller mutating its dict later must not change the record.
            object.__setattr__(self, "schema", _checked_schema(self.schema))

    @classmethod
    def new(
        cls,
        *,
        dag_id: str,
        run_id: str,
        task_id: str,
        secret_name: str,
        ttl: timedelta | float,
        map_index: int = -1,
        try_number: int = 1,
        schema: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> CallbackRegistration:
        """A registration with a fresh id that expires ``ttl`` (seconds or a timedelta) from ``now``."""
        delta = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
        if delta <= timedelta(0):
            raise WebhookConfigError("ttl", "a positive duration", value=ttl)
        created = _utc(now, "now") if now is not None else _now()
        return cls(
            callback_id=new_callback_id(),
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            expires_at=created + delta,
            secret_name=secret_name,
            map_index=map_index,
            try_number=try_number,
            schema=schema,
            created_at=created,
        )

    def expired(self, now: datetime | None = None) -> bool:
        return (now or _now()) >= self.expires_at

    def url(self, base_url: str) -> str:
        return callback_url(base_url, self.callback_id)

    @property
    def schema_json(self) -> str | None:
        """The schema as canonical JSON text (how stores keep it, and the receiver's cache key)."""
        return None if self.schema is None else json.dumps(self.schema, sort_keys=True, separators=(",", ":"))


def _checked_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise WebhookConfigError("schema", "a JSON Schema object (a mapping)", value=schema)
    try:
        plain: dict[str, Any] = json.loads(json.dumps(schema))
        jsonschema.validators.validator_for(plain).check_schema(plain)
    except (TypeError, ValueError) as exc:
        raise WebhookConfigError("schema", f"a JSON-serialisable JSON Schema ({exc})") from None
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise WebhookConfigError("schema", f"a valid JSON Schema; at {path}: {exc.message}") from None
    return plain
