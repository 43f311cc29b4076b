"""The webhook receiver inside the Airflow API server: a FastAPI app mounted at ``/integrations/webhooks``.

Routes (under ``[api] base_url`` and :data:`URL_PREFIX`):

- ``POST /callbacks/{callback_id}``: the framework-neutral :class:`~airflow_provider_integrations.webhooks.
  Receiver` judges the request (202 accepted, 200 duplicate, 400, 401, 404, 413, 415, 503; see its
  docstring). At most ``webhook_max_body_bytes + 1`` bytes are read, and a declared ``Content-Length``
  above the limit is answered 413 before any byte of the body is read.
- ``GET /health``: 200 when the callback store answers, else 503.

The app is public on purpose: partners cannot log in to Airflow. Every callback must instead be signed
with the keys of the connection its registration names (``secret_conn_id``), and the id in the URL is
unguessable. The receiver, its store (shared per process and event loop) and the verifier cache open on
the first request, so a callback store that is down never stops the API server from starting; the app's
lifespan (run by Airflow's for every mounted FastAPI app) closes them.

Registered through the ``airflow.plugins`` entry point (provider-info ``plugins`` are loaded only with
``[core] lazy_discover_providers = False``)::

    [project.entry-points."airflow.plugins"]
    integrations_webhooks = "airflow_provider_integrations.plugins.webhooks:WebhookReceiverPlugin"

Other webhook routes join :data:`ROUTERS`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Final

from airflow.sdk.plugins_manager import AirflowPlugin
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.plugins._http import read_at_most, send_verdict
from airflow_provider_integrations.plugins.webhook_events import events
from airflow_provider_integrations.webhooks import Receiver
from airflow_provider_integrations.webhooks.verdict import Verdict

__all__ = ["ROUTERS", "URL_PREFIX", "WebhookReceiverPlugin", "create_app", "receiver_of"]

URL_PREFIX: Final = "/integrations/webhooks"
log = logging.getLogger(__name__)


class ReceiverState:
    """The receiver of one running app, opened on first use and closed with the app."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._receiver: Receiver | None = None

    async def get(self) -> Receiver:
        if self._receiver is not None:
            return self._receiver
        async with self._lock:
            if self._receiver is None:
                stack = AsyncExitStack()
                self._receiver = await stack.enter_async_context(WebhookHook().receiver())
                self._stack = stack
        return self._receiver

    async def aclose(self) -> None:
        stack, self._stack, self._receiver = self._stack, None, None
        if stack is not None:
            await stack.aclose()


async def receiver_of(request: Request) -> Receiver:
    """The receiver of the app serving ``request``, for the routes of :data:`ROUTERS`."""
    state: ReceiverState | None = getattr(request.app.state, "webhook_receiver", None)
    if state is None:  # the lifespan did not run (an app started without it): open on demand
        state = request.app.state.webhook_receiver = ReceiverState()
    return await state.get()


callbacks = APIRouter(tags=["webhook callbacks"])


@callbacks.post("/callbacks/{callback_id}")
async def deliver_callback(callback_id: str, request: Request) -> Response:
    try:
        receiver = await receiver_of(request)
    except Exception as exc:
        # Whatever keeps the store from opening (settings, connection, database down) is answered like
        # a store failure: 503, which partners retry. The cause goes to the log, never to the caller.
        log.warning("webhook receiver unavailable: %s: %s", type(exc).__name__, exc)
        verdict = Verdict(503, "store_unavailable", callback_id)
        verdict.audit()
        return send_verdict(verdict)
    limit = receiver.config.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return send_verdict(receiver.too_large(callback_id, request.headers, int(declared)))
    body = await read_at_most(request, limit + 1)
    return send_verdict(await receiver.handle(callback_id, request.headers, body))


@callbacks.get("/health")
async def health(request: Request) -> JSONResponse:
    try:
        receiver = await receiver_of(request)
        await receiver.store.ping()
    except Exception as exc:  # as above: any cause means "unavailable"
        log.warning("webhook receiver unavailable: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable", "store": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "store": "ok"})


#: The routers of the app; add webhook routes here.
ROUTERS: list[APIRouter] = [callbacks, events]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.webhook_receiver = ReceiverState()
    try:
        yield
    finally:
        await state.aclose()


def create_app() -> FastAPI:
    app = FastAPI(
        title="Webhook receiver (airflow-provider-integrations)",
        lifespan=_lifespan,
        # Public app: no interactive docs advertising it.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app


class WebhookReceiverPlugin(AirflowPlugin):
    name = "integrations_webhooks"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Webhook receiver (Integrations)"}
    ]
