"""Command line of the standalone receiver.

``python -m airflow_provider_integrations.webhooks serve --store sqlite:////var/lib/callbacks.db
--secret-env partner=PARTNER_WEBHOOK_SECRET`` prints one ready line to stdout and serves until SIGTERM;
audit lines go to stderr. ``generate-secret`` and ``generate-payload-key`` print fresh key material.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from airflow_provider_integrations.webhooks.crypto import generate_payload_key
from airflow_provider_integrations.webhooks.errors import WebhookConfigError, WebhookError
from airflow_provider_integrations.webhooks.keys import generate_keypair, generate_secret
from airflow_provider_integrations.webhooks.receiver import DEFAULT_MAX_BODY_BYTES
from airflow_provider_integrations.webhooks.server import ServeConfig, serve
from airflow_provider_integrations.webhooks.signing import DEFAULT_TOLERANCE


def _secret_env(text: str) -> tuple[str, str]:
    name, sep, env = text.partition("=")
    return (name, env) if sep else (text, text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_integrations.webhooks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the standalone callback receiver")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8780, help="0 picks a free port")
    run.add_argument(
        "--store", required=True, help="sqlite:///<path> or postgresql://user@host:port/db[?schema=...]"
    )
    run.add_argument(
        "--secret-env",
        action="append",
        default=[],
        type=_secret_env,
        metavar="[NAME=]ENV",
        help="secret NAME (default: ENV) is read from environment variable ENV; repeatable",
    )
    run.add_argument("--encryption-key-env", metavar="ENV", help="env var with payload encryption key(s)")
    run.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    run.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="timestamp tolerance, s")
    run.add_argument("--cleanup-interval", type=float, default=600.0, help="seconds; 0 disables")
    run.add_argument("--log-level", default="INFO")
    commands.add_parser("generate-secret", help="print a fresh whsec_ secret")
    commands.add_parser("generate-keypair", help="print a fresh whsk_ private and whpk_ public key")
    commands.add_parser("generate-payload-key", help="print a fresh payload encryption key")
    return parser


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _run(config: ServeConfig) -> None:
    try:
        import uvloop
    except ImportError:  # optional: only faster
        asyncio.run(serve(config, _announce))
    else:
        uvloop.run(serve(config, _announce))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "generate-secret":
        _announce(generate_secret())
        return 0
    if args.command == "generate-keypair":
        _announce("\n".join(generate_keypair()))
        return 0
    if args.command == "generate-payload-key":
        _announce(generate_payload_key())
        return 0
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = ServeConfig(
            store_url=args.store,
            secret_envs=dict(args.secret_env),
            host=args.host,
            port=args.port,
            max_body_bytes=args.max_body_bytes,
            tolerance=args.tolerance,
            encryption_key_env=args.encryption_key_env,
            cleanup_interval=args.cleanup_interval,
        )
        _run(config)
    except (WebhookConfigError, ValueError) as exc:
        parser.error(str(exc))
    except WebhookError as exc:
        sys.stderr.write(f"webhook receiver stopped: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
