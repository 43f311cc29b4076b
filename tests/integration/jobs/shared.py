"""What the job tests, their DAG files and their child processes share: the sandbox's job API, stats."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from airflow_provider_integrations.http.jobs import JobApi

#: The sandbox's jobs API (:mod:`airflow_provider_integrations.sandbox.jobs`).
JOB_API = JobApi(
    submit_endpoint="/jobs",
    status_endpoint="/jobs/{job_id}",
    results_endpoint="/jobs/{job_id}/results",
    results_pagination={"type": "cursor", "cursor_path": "next_cursor", "items_path": "items"},
    cancel_endpoint="/jobs/{job_id}/cancel",
)


def fetch(url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """Plain urllib: the sandbox's own bookkeeping must not go through the client under test."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def job_stats(sandbox_url: str, tag: str) -> dict[str, Any]:
    """``{"submit_requests", "submissions", "cancels", "jobs": [{"id", "state", "polls", "cancels"}]}``."""
    stats: dict[str, Any] = fetch(f"{sandbox_url}/jobs-stats?tag={tag}")
    return stats
