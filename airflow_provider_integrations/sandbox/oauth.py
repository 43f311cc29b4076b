"""OAuth2 client-credentials token endpoint plus the controls tests use to age tokens.

Tokens are random and tracked server-side, so expiry and revocation are real:
a client that caches a token past its lifetime gets a genuine 401.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from airflow_provider_integrations.sandbox.auth import (
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    AuthFailure,
    parse_basic_authorization,
)
from airflow_provider_integrations.sandbox.params import json_error
from airflow_provider_integrations.sandbox.state import get_state

# Token responses must never be cached by intermediaries (RFC 6749 5.1).
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_from_request(request: web.Request, form: dict[str, str]) -> tuple[str | None, str | None, bool]:
    """Return (client_id, client_secret, used_basic) from either client auth method."""
    try:
        basic = parse_basic_authorization(request.headers.get("Authorization"))
    except AuthFailure:
        return None, None, True
    if basic is not None:
        # RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
        return unquote_plus(basic[0]), unquote_plus(basic[1]), True
    return form.get("client_id"), form.get("client_secret"), False


async def token(request: web.Request) -> web.Response:
    state = get_state(request)
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    client_id, client_secret, used_basic = _client_from_request(request, form)
    if used_basic and "client_secret" in form:
        return json_error(400, "invalid_request", "use only one client authentication method")
    if client_id != OAUTH_CLIENT_ID or client_secret != OAUTH_CLIENT_SECRET:
        response = json_error(401, "invalid_client", "client authentication failed")
        if used_basic:
            response.headers["WWW-Authenticate"] = 'Basic realm="sandbox"'
        return response
    grant_type = form.get("grant_type")
    if not grant_type:
        return json_error(400, "invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return json_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
    raw_scope = form.get("scope")
    scope = " ".join(raw_scope.split()) if raw_scope else None
    audience = form.get("audience") or None
    access_token, _ = state.token_store.issue(client_id, scope, audience)
    state.counters.tokens_issued += 1
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": state.token_store.ttl,
        "scope": scope,
    }
    if audience is not None:
        body["audience"] = audience
    return web.json_response(body, headers=_NO_STORE)


async def set_token_ttl(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
        seconds = payload["seconds"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return json_error(400, "invalid_request", 'expected JSON body {"seconds": N}')
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        return json_error(400, "invalid_request", "seconds must be a non-negative integer")
    # Only affects tokens issued from now on, like a provider changing its policy.
    get_state(request).token_store.ttl = seconds
    return web.json_response({"token_ttl": seconds})


async def revoke_tokens(request: web.Request) -> web.Response:
    revoked = get_state(request).token_store.revoke_all()
    return web.json_response({"revoked": revoked})


def register(app: web.Application) -> None:
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/control/token-ttl", set_token_ttl)
    app.router.add_post("/control/revoke-tokens", revoke_tokens)
