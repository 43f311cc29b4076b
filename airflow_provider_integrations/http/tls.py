"""SSL contexts built once per TLS configuration."""

from __future__ import annotations

import functools
import os
import ssl
import tempfile

from airflow_provider_integrations.connections.http_config import TlsConfig

_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@functools.lru_cache(maxsize=64)
def ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """Verification on by default, an optional private CA, mTLS and a minimum protocol version."""
    ctx = (
        ssl.create_default_context(cadata=tls.ca_bundle_pem)
        if tls.ca_bundle_pem
        else ssl.create_default_context()
    )
    ctx.minimum_version = _VERSIONS[tls.min_version]
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.client_cert_pem and tls.client_key_pem:
        _load_client_cert(ctx, tls.client_cert_pem, tls.client_key_pem)
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    # ssl only loads certificate chains from files: write both to a private (0600) file and remove it at once.
    fd, path = tempfile.mkstemp(prefix="integrations-mtls-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(cert_pem.strip() + "\n" + key_pem.strip() + "\n")
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
