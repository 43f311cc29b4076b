# generated, do not edit: produced by scripts/gen_provider_info.py from provider.yaml
# (conn-fields come from connections/integration_http.schema.json).
# ruff: noqa: E501
from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-integrations",
        "name": "Integrations",
        "description": "Reliable integrations with external systems: typed connections, an async HTTP core with retries, rate limits and circuit breaking, polling, webhook callbacks, batch/async-job APIs and streaming.\n",
        "integrations": [
            {
                "integration-name": "HTTP API (Integrations)",
                "external-doc-url": "https://example.invalid/airflow-provider-integrations",
                "tags": ["protocol"],
            },
            {
                "integration-name": "PostgreSQL (asyncpg)",
                "external-doc-url": "https://example.invalid/airflow-provider-integrations",
                "tags": ["software"],
            },
            {
                "integration-name": "Webhook callbacks",
                "external-doc-url": "https://example.invalid/airflow-provider-integrations",
                "tags": ["protocol"],
            },
            {
                "integration-name": "Streaming (Integrations)",
                "external-doc-url": "https://example.invalid/airflow-provider-integrations",
                "tags": ["protocol"],
            },
        ],
        "hooks": [
            {
                "integration-name": "HTTP API (Integrations)",
                "python-modules": ["airflow_provider_integrations.hooks.http"],
            },
            {
                "integration-name": "PostgreSQL (asyncpg)",
                "python-modules": ["airflow_provider_integrations.hooks.postgres"],
            },
            {
                "integration-name": "Webhook callbacks",
                "python-modules": [
                    "airflow_provider_integrations.hooks.webhooks",
                    "airflow_provider_integrations.hooks.webhook_events",
                ],
            },
            {
                "integration-name": "Streaming (Integrations)",
                "python-modules": [
                    "airflow_provider_integrations.hooks.streams",
                    "airflow_provider_integrations.hooks.stream_windows",
                    "airflow_provider_integrations.hooks.stream_checkpoints",
                ],
            },
        ],
        "operators": [
            {
                "integration-name": "HTTP API (Integrations)",
                "python-modules": [
                    "airflow_provider_integrations.operators.http",
                    "airflow_provider_integrations.operators.batch",
                    "airflow_provider_integrations.operators.async_job",
                ],
            },
            {
                "integration-name": "PostgreSQL (asyncpg)",
                "python-modules": ["airflow_provider_integrations.operators.postgres"],
            },
            {
                "integration-name": "Webhook callbacks",
                "python-modules": ["airflow_provider_integrations.operators.webhooks"],
            },
            {
                "integration-name": "Streaming (Integrations)",
                "python-modules": [
                    "airflow_provider_integrations.operators.streams",
                    "airflow_provider_integrations.operators.stream_sinks",
                ],
            },
        ],
        "sensors": [
            {
                "integration-name": "HTTP API (Integrations)",
                "python-modules": ["airflow_provider_integrations.sensors.http"],
            },
            {
                "integration-name": "PostgreSQL (asyncpg)",
                "python-modules": ["airflow_provider_integrations.sensors.sql"],
            },
        ],
        "triggers": [
            {
                "integration-name": "HTTP API (Integrations)",
                "python-modules": [
                    "airflow_provider_integrations.triggers.http_poll",
                    "airflow_provider_integrations.triggers.job_status",
                ],
            },
            {
                "integration-name": "PostgreSQL (asyncpg)",
                "python-modules": ["airflow_provider_integrations.triggers.sql"],
            },
            {
                "integration-name": "Webhook callbacks",
                "python-modules": [
                    "airflow_provider_integrations.triggers.webhooks",
                    "airflow_provider_integrations.triggers.webhook_events",
                ],
            },
            {
                "integration-name": "Streaming (Integrations)",
                "python-modules": [
                    "airflow_provider_integrations.triggers.streams",
                    "airflow_provider_integrations.triggers.stream_events",
                ],
            },
        ],
        "connection-types": [
            {
                "connection-type": "integration_http",
                "hook-class-name": "airflow_provider_integrations.hooks.http.IntegrationHttpHook",
                "hook-name": "HTTP API (Integrations)",
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {
                        "host": "Host or base URL",
                        "schema": "Path prefix",
                        "login": "Username / client ID / HMAC key ID",
                        "password": "Password / token / API key / client secret / HMAC secret",
                    },
                    "placeholders": {
                        "host": "api.example.com  (or https://api.example.com:8443/v1)",
                        "port": "443",
                        "schema": "v1",
                        "login": "only for basic, oauth2_client_credentials and hmac",
                    },
                },
                "conn-fields": {
                    "scheme": {
                        "label": "Scheme",
                        "description": "URL scheme used to reach the host: https unless set here or given by a full URL in Host (the two must agree).",
                        "schema": {"type": ["string", "null"], "enum": ["https", "http"]},
                    },
                    "auth_scheme": {
                        "label": "Authentication",
                        "description": "How requests authenticate. basic: Username + Password. bearer: Password is the token. api_key: Password is the key, sent as 'API key name'. oauth2_client_credentials: Username is the client ID, Password the client secret. hmac: Username is the key ID, Password the signing secret.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": [
                                "none",
                                "basic",
                                "bearer",
                                "api_key",
                                "oauth2_client_credentials",
                                "hmac",
                            ],
                            "default": "none",
                        },
                    },
                    "auth_key_name": {
                        "label": "API key name",
                        "description": "Header (or query parameter) that carries the API key when Authentication is api_key.",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "X-API-Key",
                            "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                            "minLength": 1,
                        },
                    },
                    "auth_key_in": {
                        "label": "API key location",
                        "description": "Send the API key in a request header or in the query string.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["header", "query"],
                            "default": "header",
                        },
                    },
                    "oauth2_endpoint": {
                        "label": "OAuth2 token endpoint",
                        "description": "Token endpoint for oauth2_client_credentials: an absolute http(s) URL, or a path joined to the base URL (host, port and path prefix).",
                        "schema": {
                            "type": ["string", "null"],
                            "pattern": "^(https?://[^\\s/?#@]+[^\\s]*|[^\\s:]+)$",
                            "minLength": 1,
                        },
                    },
                    "oauth2_scopes": {
                        "label": "OAuth2 scopes",
                        "description": "Space-separated scopes requested with the token.",
                        "schema": {"type": ["string", "null"], "pattern": "^[^\\r\\n]*$"},
                    },
                    "oauth2_audience": {
                        "label": "OAuth2 audience",
                        "description": "Optional 'audience' parameter sent to the token endpoint.",
                        "schema": {"type": ["string", "null"], "pattern": "^[^\\r\\n]*$", "minLength": 1},
                    },
                    "oauth2_client_auth": {
                        "label": "OAuth2 client authentication",
                        "description": "How the client ID and secret reach the token endpoint: HTTP Basic (client_secret_basic) or form fields (client_secret_post).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["client_secret_basic", "client_secret_post"],
                            "default": "client_secret_basic",
                        },
                    },
                    "hmac_algorithm": {
                        "label": "HMAC algorithm",
                        "description": "Digest used to sign requests when Authentication is hmac.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["sha256", "sha512"],
                            "default": "sha256",
                        },
                    },
                    "default_headers": {
                        "label": "Default headers",
                        "description": 'JSON object of headers sent with every request, e.g. {"Accept": "application/json"}. Do not put credentials here; use Authentication and Password.',
                        "schema": {"type": ["object", "null"]},
                    },
                    "api_version_header": {
                        "label": "API version header",
                        "description": "Header that carries the API version, e.g. X-API-Version. Set together with API version.",
                        "schema": {
                            "type": ["string", "null"],
                            "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                            "minLength": 1,
                        },
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "Value of the API version header, e.g. 2024-10-01.",
                        "schema": {"type": ["string", "null"], "pattern": "^[^\\r\\n]*$", "minLength": 1},
                    },
                    "connect_timeout": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for the TCP and TLS connection.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": 10,
                            "minimum": 0,
                            "exclusiveMinimum": 0,
                        },
                    },
                    "read_timeout": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait between two reads of the response. Empty by default: the total timeout bounds every attempt, and a per-read timer costs each request CPU; set it for slow or streamed responses.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "exclusiveMinimum": 0},
                    },
                    "total_timeout": {
                        "label": "Total timeout (s)",
                        "description": "Seconds one attempt may take from start to the end of the response.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": 60,
                            "minimum": 0,
                            "exclusiveMinimum": 0,
                        },
                    },
                    "retry_max_attempts": {
                        "label": "Max attempts",
                        "description": "Attempts per call including the first one; 1 disables retries.",
                        "schema": {"type": ["integer", "null"], "default": 3, "minimum": 1, "maximum": 20},
                    },
                    "retry_base_delay": {
                        "label": "Retry base delay (s)",
                        "description": "Delay before the first retry; it doubles on each further retry.",
                        "schema": {"type": ["number", "null"], "default": 0.5, "minimum": 0},
                    },
                    "retry_max_delay": {
                        "label": "Retry max delay (s)",
                        "description": "Upper bound of one backoff delay between attempts.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": 30,
                            "minimum": 0,
                            "exclusiveMinimum": 0,
                        },
                    },
                    "retry_jitter": {
                        "label": "Retry jitter",
                        "description": "Randomise delays (full jitter) so that many clients do not retry in step.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "retry_on_statuses": {
                        "label": "Retry on statuses",
                        "description": "HTTP statuses that are retried (connection errors and timeouts always are).",
                        "schema": {
                            "type": ["array", "null"],
                            "default": [429, 500, 502, 503, 504],
                            "items": {"type": "integer", "minimum": 400, "maximum": 599},
                        },
                    },
                    "retry_respect_retry_after": {
                        "label": "Respect Retry-After",
                        "description": "Wait as long as the server's Retry-After header asks, even beyond Retry max delay (the retry budget still applies).",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "retry_budget_seconds": {
                        "label": "Retry budget (s)",
                        "description": "Total seconds one call may spend waiting between attempts.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": 120,
                            "minimum": 0,
                            "exclusiveMinimum": 0,
                        },
                    },
                    "idempotency_header": {
                        "label": "Idempotency header",
                        "description": "Header carrying the idempotency key that makes non-idempotent methods (POST, PATCH) safe to retry.",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "Idempotency-Key",
                            "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                            "minLength": 1,
                        },
                    },
                    "rate_limit_per_second": {
                        "label": "Rate limit (requests/s)",
                        "description": "Client-side limit per process; empty means unlimited.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "exclusiveMinimum": 0},
                    },
                    "rate_limit_burst": {
                        "label": "Rate limit burst",
                        "description": "Requests that may be sent at once before the rate limit applies.",
                        "schema": {"type": ["integer", "null"], "default": 1, "minimum": 1},
                    },
                    "circuit_failure_threshold": {
                        "label": "Circuit breaker threshold",
                        "description": "Consecutive failures that open the circuit breaker; 0 disables it.",
                        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0},
                    },
                    "circuit_reset_timeout": {
                        "label": "Circuit breaker reset (s)",
                        "description": "Seconds an open circuit waits before letting one trial request through.",
                        "schema": {
                            "type": ["number", "null"],
                            "default": 30,
                            "minimum": 0,
                            "exclusiveMinimum": 0,
                        },
                    },
                    "tls_verify": {
                        "label": "Verify TLS",
                        "description": "Verify the server certificate. Turn off only for local testing.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "tls_ca_bundle": {
                        "label": "CA bundle (PEM)",
                        "description": "PEM certificates trusted instead of the system CA store (e.g. a private CA).",
                        "schema": {
                            "type": ["string", "null"],
                            "format": "multiline",
                            "pattern": "-----BEGIN [A-Z0-9 ]+-----",
                        },
                    },
                    "tls_client_cert": {
                        "label": "Client certificate (PEM)",
                        "description": "PEM certificate (chain) for mutual TLS; requires Client private key.",
                        "schema": {
                            "type": ["string", "null"],
                            "format": "multiline",
                            "pattern": "-----BEGIN [A-Z0-9 ]+-----",
                        },
                    },
                    "tls_client_private_key": {
                        "label": "Client private key (PEM)",
                        "description": "Unencrypted PEM private key for mutual TLS; requires Client certificate. Line breaks lost when pasting are restored.",
                        "schema": {
                            "type": ["string", "null"],
                            "format": "password",
                            "pattern": "-----BEGIN [A-Z0-9 ]+-----",
                        },
                    },
                    "tls_min_version": {
                        "label": "Minimum TLS version",
                        "description": "Lowest TLS protocol version accepted.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": ["TLSv1.2", "TLSv1.3"],
                            "default": "TLSv1.2",
                        },
                    },
                    "health_check_path": {
                        "label": "Health check path",
                        "description": "Path (relative to the base URL) requested by Test connection.",
                        "schema": {"type": ["string", "null"], "default": "/health", "pattern": "^/[^\\s]*$"},
                    },
                    "auth_check_path": {
                        "label": "Auth check path",
                        "description": "Path (relative to the base URL) that requires authentication; Test connection requests it to prove the credentials are accepted. Empty skips that check.",
                        "schema": {"type": ["string", "null"], "pattern": "^/[^\\s]*$"},
                    },
                    "detailed_timings": {
                        "label": "Detailed timings",
                        "description": "Measure DNS and connect/TLS time of every new connection through aiohttp tracing (a few microseconds per request). TTFB and total are always measured; the connection test always traces.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "pool_size": {
                        "label": "Connection pool size",
                        "description": "Upper bound of pooled TCP connections per session.",
                        "schema": {
                            "type": ["integer", "null"],
                            "default": 100,
                            "minimum": 1,
                            "maximum": 1000,
                        },
                    },
                },
            }
        ],
        "config": {
            "integrations": {
                "description": "Settings of the airflow-provider-integrations provider.",
                "options": {
                    "connection_cache_ttl": {
                        "description": "Seconds a resolved connection (parsed config) is cached per process, so that tasks and\ntriggers do not look it up on every request or poll. 0 looks it up every time.\n",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "60",
                        "default": "300",
                    },
                    "triggerer_gc_freeze": {
                        "description": "Freeze the garbage collector's view of the heap (gc.freeze()) when the first trigger of this\nprovider starts in a process. A triggerer holding thousands of waiting triggers then stalls\nits event loop far less during full collections. Process-wide, hence off by default.\n",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    },
                    "batch_state_dir": {
                        "description": "Root directory of BatchApiOperator checkpoints and outcome files (one subdirectory per task\ninstance, the same across tries). Empty: $AIRFLOW_HOME/batch_state. Use storage every worker\ncan reach.\n",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/shared/airflow/batch_state",
                        "default": "",
                    },
                    "webhook_base_url": {
                        "description": "Public base URL partners call back, without a trailing slash: the API server's plugin\n(https://airflow.example.com/integrations/webhooks) or the standalone receiver\n(python -m airflow_provider_integrations.webhooks serve). Callback URLs are this plus\n/callbacks/<id>; webhook events go to /events/<source>.\n",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "https://airflow.example.com/integrations/webhooks",
                        "default": "",
                    },
                    "webhook_store": {
                        "description": "Where callbacks and webhook events are stored: sqlite:///{AIRFLOW_HOME}/integrations_webhooks.db\n(the default; one machine) or postgres_conn://<conn_id>?schema=<schema> (many API servers and\ntriggerers; waiting triggers wake on one shared LISTEN connection). The PostgreSQL form names an\nAirflow connection, so no password sits in the configuration.\n",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "postgres_conn://postgres_default?schema=public",
                        "default": "sqlite:///{AIRFLOW_HOME}/integrations_webhooks.db",
                    },
                    "webhook_payload_keys": {
                        "description": "Space-separated payload encryption keys (newest first; generate one with\npython -m airflow_provider_integrations.webhooks generate-payload-key). Stored payloads are\nencrypted with the first and readable with any. Empty: payloads are stored unencrypted.\n",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": None,
                        "default": "",
                    },
                    "webhook_max_body_bytes": {
                        "description": "Largest callback or event body accepted; larger ones are answered 413.",
                        "version_added": "0.1.0",
                        "type": "integer",
                        "example": "65536",
                        "default": "1048576",
                    },
                    "webhook_tolerance_seconds": {
                        "description": "How far a webhook-timestamp may lie in the past or future before the request is refused with\n401 (replay protection, Standard Webhooks).\n",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "60",
                        "default": "300",
                    },
                    "stream_checkpoints": {
                        "description": "Where StreamBatchOperator and StreamEventTrigger keep stream checkpoints: sqlite:///<absolute path>\n(empty: $AIRFLOW_HOME/integrations_stream_checkpoints.db; workers and triggerers must share it),\nor postgres_conn://<postgres connection id>[?schema=...&table=...] (the password stays in the\nconnection).\n",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "postgres_conn://warehouse_pg?schema=airflow",
                        "default": "",
                    },
                },
            }
        },
    }
