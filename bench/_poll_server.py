"""Light status server for ``bench/trigger_density.py``: ``python bench/_poll_server.py PORT``.

Serves only the sandbox's counter endpoint ``/poll-after`` ("done on the Nth poll", see
``sandbox/status.py``) plus ``/_connections`` (distinct TCP connections and requests since the last
DELETE), without the full sandbox's middleware.
"""

from __future__ import annotations

import sys

from aiohttp import web

from airflow_provider_integrations.sandbox.status import create_poll_app


def main() -> None:
    print("ready", flush=True)
    # A deep accept queue: the official trigger opens a connection per poll, 10,000 at once.
    web.run_app(
        create_poll_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=4096
    )


if __name__ == "__main__":
    main()
