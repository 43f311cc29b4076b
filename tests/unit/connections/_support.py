"""Helpers shared by the connection-parsing tests (PEM material, a parse shortcut)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.connections.http_parse import parse_http_connection

# Appears in every secret the tests use: it must never show up in an error message.
SECRET = "s3cr3t-VALUE-never-shown"


@dataclass(frozen=True)
class Pem:
    cert: str
    key: str


def make_pem() -> Pem:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client.test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return Pem(
        cert=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def parse(extra: Any = None, **fields: Any) -> HttpClientConfig:
    """parse_http_connection with harmless defaults for the standard fields."""
    kwargs: dict[str, Any] = {
        "conn_id": "my_api",
        "host": "api.example.com",
        "port": None,
        "schema": None,
        "login": None,
        "password": None,
        "extra": extra,
    }
    kwargs.update(fields)
    return parse_http_connection(**kwargs)
