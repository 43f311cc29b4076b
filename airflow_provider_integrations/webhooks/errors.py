"""Typed webhook errors.

::

    IntegrationError
    └── WebhookError
        ├── WebhookConfigError      a secret, key, URL, registration or store setting is invalid
        │                           (``field`` and ``expected``; secret values are never shown)
        ├── SignatureError          a request failed verification (``reason``: a stable code, see below)
        ├── PayloadDecryptError     a stored payload cannot be decrypted with the configured keys
        ├── CallbackNotFoundError   waiting on a callback id that was never registered (or was cleaned up)
        ├── CallbackExpiredError    waiting on a callback that expired before anything was delivered
        ├── CallbackConflictError   registering an id that is already bound to another task try
        └── StoreUnavailableError   the callback store failed (I/O); worth another attempt

``SignatureError.reason`` is one of :data:`SIGNATURE_REASONS`; the receiver puts it in its 401 answer
and its audit line, so a partner can tell a clock problem from a wrong secret.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_integrations.exceptions import MASKED, MISSING, IntegrationError

__all__ = [
    "SIGNATURE_REASONS",
    "CallbackConflictError",
    "CallbackExpiredError",
    "CallbackNotFoundError",
    "PayloadDecryptError",
    "SignatureError",
    "StoreUnavailableError",
    "WebhookConfigError",
    "WebhookError",
]

SIGNATURE_REASONS: Final = frozenset(
    {
        "missing_header",  # webhook-id, webhook-timestamp or webhook-signature absent or empty
        "invalid_webhook_id",  # too long or not printable ASCII
        "invalid_timestamp",  # not integer unix seconds
        "stale_timestamp",  # older than the tolerance
        "future_timestamp",  # newer than the tolerance
        "no_valid_signature",  # no signature in the header matched any key
    }
)


class WebhookError(IntegrationError):
    """Base of every webhook error."""


class WebhookConfigError(WebhookError, ValueError):
    """``field`` is invalid: ``expected`` says what was expected. ``value`` is shown unless ``secret``."""

    def __init__(self, field: str, expected: str, *, value: Any = MISSING, secret: bool = False) -> None:
        self.field = field
        self.expected = expected
        # Masked here so no later formatting (str, repr, logging, pickling) can leak it.
        self.value = MASKED if secret and value is not MISSING else value
        shown = "" if self.value is MISSING else f" = {self.value!r}"
        super().__init__(f"{field}{shown}: expected {expected}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_config_error, (self.field, self.expected, self.value))


def _rebuild_config_error(field: str, expected: str, value: Any) -> WebhookConfigError:
    return WebhookConfigError(field, expected, value=value)


class SignatureError(WebhookError):
    """Verification failed; ``reason`` is one of :data:`SIGNATURE_REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.args[0]))


class PayloadDecryptError(WebhookError):
    pass


class CallbackNotFoundError(WebhookError):
    pass


class CallbackExpiredError(WebhookError):
    pass


class CallbackConflictError(WebhookError):
    pass


class StoreUnavailableError(WebhookError):
    retriable = True
