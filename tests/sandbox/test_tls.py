"""TLS: generated PKI, mutual TLS, and the verification failures clients must surface."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airflow_provider_integrations.sandbox import SandboxProcess, TlsMaterial, generate_tls_material


@pytest.fixture(scope="module")
def expired_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return generate_tls_material(tmp_path_factory.mktemp("expired-tls"), expired=True)


@pytest.fixture(scope="module")
def expired_sandbox(expired_material: TlsMaterial) -> Iterator[SandboxProcess]:
    with SandboxProcess(tls=expired_material) as process:
        yield process


def client_context(material: TlsMaterial, *, with_client_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(material.ca_cert_file))
    if with_client_cert:
        context.load_cert_chain(str(material.client_cert_file), str(material.client_key_file))
    return context


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_generated_material(tls_material: TlsMaterial) -> None:
    ca = x509.load_pem_x509_certificate(tls_material.ca_cert_pem.encode())
    server = x509.load_pem_x509_certificate(tls_material.server_cert_file.read_bytes())
    client = x509.load_pem_x509_certificate(tls_material.client_cert_pem.encode())
    assert common_name(server) == "sandbox.localhost"
    assert common_name(client) == "integration-client"
    assert server.issuer == client.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    now = dt.datetime.now(dt.timezone.utc)
    assert server.not_valid_before_utc < now < server.not_valid_after_utc
    assert dt.timedelta(days=29) < server.not_valid_after_utc - now <= dt.timedelta(days=30)
    assert tls_material.server_key_file.stat().st_mode & 0o077 == 0, "private keys are not world readable"
    assert Path(tls_material.client_key_file).read_text() == tls_material.client_key_pem


def test_expired_material_is_expired(expired_material: TlsMaterial) -> None:
    server = x509.load_pem_x509_certificate(expired_material.server_cert_pem.encode())
    assert server.not_valid_after_utc < dt.datetime.now(dt.timezone.utc)
    assert expired_material.expired


async def test_mtls_with_ca_and_client_cert_succeeds(
    tls_material: TlsMaterial, mtls_sandbox: SandboxProcess
) -> None:
    assert mtls_sandbox.url.startswith("https://127.0.0.1:")
    connector = aiohttp.TCPConnector(ssl=client_context(tls_material))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(f"{mtls_sandbox.url}/health") as response:
            assert await response.json() == {"status": "ok"}
        async with http.get(f"{mtls_sandbox.url}/secure/mtls/whoami") as response:
            assert await response.json() == {"scheme": "mtls", "principal": "integration-client"}


async def test_localhost_name_also_verifies(tls_material: TlsMaterial, mtls_sandbox: SandboxProcess) -> None:
    connector = aiohttp.TCPConnector(ssl=client_context(tls_material))
    url = f"https://localhost:{mtls_sandbox.port}/health"
    async with aiohttp.ClientSession(connector=connector) as http, http.get(url) as response:
        assert response.status == 200


async def test_mtls_without_client_cert_fails(
    tls_material: TlsMaterial, mtls_sandbox: SandboxProcess
) -> None:
    connector = aiohttp.TCPConnector(ssl=client_context(tls_material, with_client_cert=False))
    async with aiohttp.ClientSession(connector=connector) as http:
        # With TLS 1.3 the server's rejection may surface on the first read rather than
        # in the handshake itself; either way the request must fail, never succeed.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with http.get(f"{mtls_sandbox.url}/health") as response:
                await response.read()


async def test_unknown_ca_fails_verification(mtls_sandbox: SandboxProcess, tmp_path: Path) -> None:
    stranger = generate_tls_material(tmp_path / "other-ca")
    connector = aiohttp.TCPConnector(ssl=client_context(stranger))
    async with aiohttp.ClientSession(connector=connector) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as excinfo:
            async with http.get(f"{mtls_sandbox.url}/health"):
                pass
    assert "certificate verify failed" in str(excinfo.value)


async def test_expired_server_cert_fails_verification(
    expired_material: TlsMaterial, expired_sandbox: SandboxProcess
) -> None:
    connector = aiohttp.TCPConnector(ssl=client_context(expired_material, with_client_cert=False))
    async with aiohttp.ClientSession(connector=connector) as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as excinfo:
            async with http.get(f"{expired_sandbox.url}/health"):
                pass
    assert "expired" in str(excinfo.value)
    # The server itself is fine: only verification rejects it.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{expired_sandbox.url}/health", ssl=False) as response,
    ):
        assert response.status == 200
