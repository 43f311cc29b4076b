"""Minimal aiohttp server for benchmarks, run in its own process: ``python bench/_server.py PORT``.

It counts distinct TCP connections so every contender's connection reuse can be compared.
"""

from __future__ import annotations

import sys

from aiohttp import web

_peers: set[object] = set()
_BODY = b'{"id": 1, "name": "item-1", "value": 10, "tags": ["a", "b"], "ok": true}'


async def item(request: web.Request) -> web.Response:
    _peers.add(request.transport)
    return web.Response(body=_BODY, content_type="application/json")


async def connections(request: web.Request) -> web.Response:
    n = len(_peers)
    if request.method == "DELETE":
        _peers.clear()
    return web.json_response({"connections": n})


def main() -> None:
    app = web.Application()
    app.router.add_get("/item", item)
    app.router.add_post("/item", item)
    app.router.add_route("*", "/_connections", connections)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
