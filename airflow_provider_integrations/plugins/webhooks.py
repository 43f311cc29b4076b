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

import logging
from contextlib import AbstractAsyncContextManager
from typing import Final

from airflow.sdk.plugins_manager import AirflowPlugin
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.plugins._http import lifespan, receive, resource_of
from airflow_provider_integrations.plugins.webhook_events import events
from airflow_provider_integrations.webhooks import Receiver
from airflow_provider_integrations.webhooks.verdict import Verdict

__all__ = ["ROUTERS", "URL_PREFIX", "WebhookReceiverPlugin", "create_app", "receiver_of"]

URL_PREFIX: Final = "/integrations/webhooks"
log = logging.getLogger(__name__)


def _open_receiver() -> AbstractAsyncContextManager[Receiver]:
    return WebhookHook().receiver()


async def receiver_of(request: Request) -> Receiver:
    """The receiver of the app serving ``request``, for the routes of :data:`ROUTERS`."""
    return await resource_of(request, "webhook_receiver", _open_receiver)


callbacks = APIRouter(tags=["webhook callbacks"])


@callbacks.post("/callbacks/{callback_id}")
async def deliver_callback(callback_id: str, request: Request) -> Response:
    return await receive(
        request,
        callback_id,
        lambda: receiver_of(request),
        lambda: Verdict(503, "store_unavailable", callback_id),
    )


@callbacks.get("/health")
async def health(request: Request) -> JSONResponse:
    try:
        receiver = await receiver_of(request)
        await receiver.store.ping()
    except Exception as exc:  # as for callbacks (plugins._http.receive): any cause means "unavailable"
        log.warning("webhook receiver unavailable: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable", "store": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "store": "ok"})


#: The routers of the app; add webhook routes here.
ROUTERS: list[APIRouter] = [callbacks, events]


def create_app() -> FastAPI:
    app = FastAPI(
        title="Webhook receiver (airflow-provider-integrations)",
        lifespan=lifespan("webhook_receiver", _open_receiver),
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
