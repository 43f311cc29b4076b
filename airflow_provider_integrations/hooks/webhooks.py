"""``WebhookHook``: the Airflow glue of webhook callbacks.

- ``[integrations]`` options -> :class:`WebhookSettings` (parsed once per process) -> the callback store,
  shared per process and event loop;
- a partner's signing connection -> a cached :class:`~airflow_provider_integrations.webhooks.Verifier`.

``webhook_store`` takes three forms:

* ``sqlite:///<absolute path>`` (``sqlite:////var/lib/...``); empty means
  ``sqlite:///$AIRFLOW_HOME/integrations_webhooks.db``: one machine, nothing to set up;
* ``postgres_conn://<conn_id>[?schema=public&table=webhook_callbacks]``: the database of a ``postgres``
  connection, so no password sits in the configuration;
* ``postgresql://user@host:port/db[?schema=...]`` with the password in ``PGPASSWORD``.

The partner's keys live in the password of the connection that ``secret_conn_id`` names: one or more
space-separated ``whsec_`` (HMAC) or ``whpk_`` (ed25519 public) keys; list old and new while rotating.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from airflow.sdk import BaseHook, conf
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_integrations.hooks._config_cache import ConfigCache
from airflow_provider_integrations.hooks._webhook_stores import lease_store
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.webhooks import (
    CallbackStore,
    PayloadCodec,
    PostgresCallbackStore,
    Receiver,
    ReceiverConfig,
    Verifier,
    WebhookConfigError,
    callback_url,
    new_callback_id,
    store_from_url,
)
from airflow_provider_integrations.webhooks.receiver import DEFAULT_MAX_BODY_BYTES
from airflow_provider_integrations.webhooks.signing import DEFAULT_TOLERANCE

__all__ = ["WebhookHook", "WebhookSettings", "load_settings"]

SECTION: Final = "integrations"
DEFAULT_STORE_FILE: Final = "integrations_webhooks.db"
_CONN_SCHEME: Final = "postgres_conn"
_CONN_OPTIONS: Final = frozenset({"schema", "table"})
_CONN_FORM: Final = f"{_CONN_SCHEME}://<postgres connection id>[?schema=...&table=...]"


def _option(name: str) -> str:
    return f"[{SECTION}] {name}"


@dataclass(frozen=True)
class WebhookSettings:
    """The ``[integrations] webhook_*`` options, validated; errors name the option, never a key."""

    base_url: str | None
    store_url: str
    codec: PayloadCodec = field(default_factory=PayloadCodec, repr=False)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.base_url is not None:
            try:
                callback_url(self.base_url, new_callback_id())
            except WebhookConfigError as exc:
                raise WebhookConfigError(
                    _option("webhook_base_url"), exc.expected, value=self.base_url
                ) from None
        _store_spec(self.store_url)  # syntax only: no connection lookup, no I/O
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise WebhookConfigError(
                _option("webhook_max_body_bytes"), "an integer >= 1", value=self.max_body_bytes
            )
        if not self.tolerance > 0:
            raise WebhookConfigError(
                _option("webhook_tolerance_seconds"), "seconds > 0", value=self.tolerance
            )

    @classmethod
    def from_conf(cls) -> WebhookSettings:
        base_url = conf.get(SECTION, "webhook_base_url", fallback="").strip() or None
        home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
        store = conf.get(SECTION, "webhook_store", fallback="").strip()
        # An unexpanded provider default still names the home; empty means the same default.
        store = store.replace("{AIRFLOW_HOME}", home) or f"sqlite:///{home}/{DEFAULT_STORE_FILE}"
        keys = conf.get(SECTION, "webhook_payload_keys", fallback="")
        try:
            codec = PayloadCodec(keys)
        except WebhookConfigError as exc:
            raise WebhookConfigError(_option("webhook_payload_keys"), exc.expected, secret=True) from None
        return cls(
            base_url=base_url,
            store_url=store,
            codec=codec,
            max_body_bytes=int(_number("webhook_max_body_bytes", int, DEFAULT_MAX_BODY_BYTES)),
            tolerance=_number("webhook_tolerance_seconds", float, DEFAULT_TOLERANCE),
        )

    def callback_url(self, callback_id: str) -> str:
        """The public URL of ``callback_id``; requires ``webhook_base_url``."""
        if self.base_url is None:
            raise WebhookConfigError(
                _option("webhook_base_url"),
                "the public http(s) base URL partners call back, e.g. "
                "https://airflow.example.com/integrations/webhooks (the API-server plugin) or the "
                "standalone receiver's URL",
            )
        return callback_url(self.base_url, callback_id)

    def receiver_config(self) -> ReceiverConfig:
        return ReceiverConfig(max_body_bytes=self.max_body_bytes, tolerance=self.tolerance)


def _number(name: str, kind: type[int] | type[float], default: float) -> float:
    raw = conf.get(SECTION, name, fallback="").strip()
    if not raw:
        return kind(default)
    try:
        return kind(raw)
    except ValueError:
        raise WebhookConfigError(_option(name), f"a number ({kind.__name__})", value=raw) from None


@functools.cache
def load_settings() -> WebhookSettings:
    """The process's settings, parsed once (``load_settings.cache_clear()`` re-reads them)."""
    return WebhookSettings.from_conf()


def _store_spec(url: str) -> tuple[str, dict[str, str]] | None:
    """``(conn_id, options)`` of the ``postgres_conn://`` form; ``None`` for a ``store_from_url`` URL."""
    prefix = f"{_CONN_SCHEME}://"
    if not url.startswith(prefix):
        try:
            store_from_url(url)  # builds, does no I/O
        except WebhookConfigError as exc:
            raise WebhookConfigError(
                _option("webhook_store"), f"{exc.expected}, or {_CONN_FORM}", value=exc.value
            ) from None
        return None
    # "_" is not allowed in a URL scheme, so urlsplit would not recognise it: split the rest instead.
    parts = urlsplit("//" + url[len(prefix) :])
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - _CONN_OPTIONS)
    if not parts.netloc or parts.path not in ("", "/") or unknown:
        raise WebhookConfigError(_option("webhook_store"), _CONN_FORM, value=url)
    return parts.netloc, options


class WebhookHook(BaseHook):
    """Callback store, receiver and partner verifiers for the webhook callback pattern.

    :param settings: defaults to the process's ``[integrations]`` settings (:func:`load_settings`).
    """

    conn_name_attr = "secret_conn_id"
    hook_name = "Webhook callbacks"

    def __init__(self, settings: WebhookSettings | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings or load_settings()

    @asynccontextmanager
    async def store(self) -> AsyncIterator[CallbackStore]:
        """``async with hook.store() as store``: the open store shared on the running loop."""
        key, make = await self.resolve_store()
        async with lease_store(key, make) as store:
            yield store

    async def resolve_store(self) -> tuple[Hashable, Callable[[], CallbackStore]]:
        """The key the configured store is shared under, and how to build it (not yet opened)."""
        url, codec = self.settings.store_url, self.settings.codec
        spec = _store_spec(url)
        if spec is None:
            return url, functools.partial(store_from_url, url, codec=codec)
        conn_id, options = spec
        # The pool settings and password come from the connection (cached per process, with a TTL).
        config = await AsyncPostgresHook(conn_id).aget_config()
        schema, table = options.get("schema", "public"), options.get("table", "webhook_callbacks")
        return ("postgres", config, schema, table), functools.partial(
            PostgresCallbackStore, config, schema=schema, table=table, codec=codec
        )

    @asynccontextmanager
    async def receiver(self) -> AsyncIterator[Receiver]:
        """A :class:`Receiver` on the shared store that verifies with the registrations' connections."""
        async with self.store() as store:
            yield Receiver(store, self.averifier, self.settings.receiver_config())

    async def averifier(self, secret_conn_id: str) -> Verifier | None:
        """The verifier of ``secret_conn_id``'s keys, cached per process with a TTL; ``None`` when the
        connection does not exist (the receiver answers 401 ``unknown_secret``)."""
        try:
            return await VERIFIERS.aget(
                secret_conn_id, functools.partial(self._aload_verifier, secret_conn_id)
            )
        except AirflowNotFoundException:
            return None

    async def _aload_verifier(self, secret_conn_id: str) -> Verifier:
        conn = await self.aget_connection(secret_conn_id)
        # Names the field, never the value: Verifier masks key material in its errors.
        return Verifier.from_secrets(
            (conn.password or "").split(), field=f"connection {secret_conn_id!r} password"
        )


def _ttl() -> float:
    return conf.getfloat(SECTION, "connection_cache_ttl", fallback=300.0)


VERIFIERS: ConfigCache[Verifier] = ConfigCache(_ttl)
