"""Throw-away PKI for TLS tests: a private CA, a server and a client certificate.

EC P-256 keys keep generation in the milliseconds, so every test session can mint
fresh material instead of committing keys to the repository. A client that does
not trust this CA sees the "self-signed / unknown issuer" failure.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_COMMON_NAME = "sandbox.localhost"
CLIENT_COMMON_NAME = "integration-client"
CA_COMMON_NAME = "Integration Sandbox Test CA"
VALIDITY_DAYS = 30


@dataclass(frozen=True)
class TlsMaterial:
    ca_cert_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str
    ca_cert_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path
    client_key_file: Path
    expired: bool = False


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airflow-provider-integrations sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _build_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name(CA_COMMON_NAME)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=90))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    usage: x509.ObjectIdentifier,
    not_before: dt.datetime,
    not_after: dt.datetime,
    san: x509.SubjectAlternativeName | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: Path, content: str, *, private: bool = False) -> Path:
    path.write_text(content)
    if private:
        path.chmod(0o600)
    return path


def generate_tls_material(directory: Path, *, expired: bool = False) -> TlsMaterial:
    """Write a CA, a server cert (expired if asked) and a client cert into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_cert, ca_key = _build_ca(now)
    if expired:
        server_window = (now - dt.timedelta(days=60), now - dt.timedelta(days=1))
    else:
        # Backdated an hour so small clock differences never make it "not yet valid".
        server_window = (now - dt.timedelta(hours=1), now + dt.timedelta(days=VALIDITY_DAYS))
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
    )
    server_cert, server_key = _issue_leaf(
        ca_cert,
        ca_key,
        SERVER_COMMON_NAME,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=server_window[0],
        not_after=server_window[1],
        san=san,
    )
    client_cert, client_key = _issue_leaf(
        ca_cert,
        ca_key,
        CLIENT_COMMON_NAME,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=VALIDITY_DAYS),
    )
    pems = {
        "ca": _cert_pem(ca_cert),
        "server": _cert_pem(server_cert),
        "server_key": _key_pem(server_key),
        "client": _cert_pem(client_cert),
        "client_key": _key_pem(client_key),
    }
    return TlsMaterial(
        ca_cert_pem=pems["ca"],
        server_cert_pem=pems["server"],
        server_key_pem=pems["server_key"],
        client_cert_pem=pems["client"],
        client_key_pem=pems["client_key"],
        ca_cert_file=_write(directory / "ca.pem", pems["ca"]),
        server_cert_file=_write(directory / "server.pem", pems["server"]),
        server_key_file=_write(directory / "server-key.pem", pems["server_key"], private=True),
        client_cert_file=_write(directory / "client.pem", pems["client"]),
        client_key_file=_write(directory / "client-key.pem", pems["client_key"], private=True),
        expired=expired,
    )
