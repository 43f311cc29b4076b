"""Command line: ``python -m airflow_provider_integrations.sandbox --port 0``.

Prints exactly one ready line to stdout (parents such as ``SandboxProcess``
parse it to learn the port) and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from airflow_provider_integrations.sandbox.app import SandboxConfig
from airflow_provider_integrations.sandbox.server import serve_until_signalled
from airflow_provider_integrations.sandbox.state import DEFAULT_TOKEN_TTL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_integrations.sandbox",
        description="Local partner-API sandbox for tests, examples and benchmarks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--tls-cert", type=Path, help="server certificate chain (PEM)")
    parser.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    parser.add_argument("--client-ca", type=Path, help="require client certificates signed by this CA")
    parser.add_argument(
        "--token-ttl", type=int, default=DEFAULT_TOKEN_TTL, help="OAuth access token lifetime in seconds"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        host=args.host,
        port=args.port,
        token_ttl=args.token_ttl,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        client_ca=args.client_ca,
    )


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    # Errors go to stderr, which SandboxProcess surfaces when startup fails.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(serve_until_signalled(config, _announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
