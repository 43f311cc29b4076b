from __future__ import annotations

import pickle
import ssl

import pytest

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.postgres.connect import connect_kwargs, ssl_argument
from airflow_provider_integrations.sandbox.certs import TlsMaterial


def test_defaults_are_valid_and_hashable() -> None:
    a, b = PgConfig(), PgConfig()
    assert a == b and hash(a) == hash(b)
    assert a.label == "postgres@127.0.0.1:5432/postgres"
    assert PgConfig(name="warehouse").label == "warehouse"


def test_password_stays_out_of_repr_and_dsn() -> None:
    config = PgConfig(user="etl", password="s3cret", database="dw", ssl_mode="require")
    assert "s3cret" not in repr(config)
    assert config.dsn == "postgresql://etl@127.0.0.1:5432/dw?sslmode=require"
    assert "s3cret" not in config.dsn


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"min_size": 5, "max_size": 2}, "$.max_size"),
        ({"max_size": 0, "min_size": 0}, "$.max_size"),
        ({"min_size": -1}, "$.min_size"),
        ({"acquire_timeout": 0}, "$.acquire_timeout"),
        ({"connect_timeout": -1.0}, "$.connect_timeout"),
        ({"statement_timeout": 0}, "$.statement_timeout"),
        ({"port": 0}, "$.port"),
        ({"host": ""}, "$.host"),
        ({"ssl_mode": "prefer"}, "$.ssl_mode"),
        ({"ssl_mode": "verify-full"}, "$.ssl_ca_pem"),
    ],
)
def test_invalid_settings_name_their_path(kwargs: dict[str, object], path: str) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        PgConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.path == path
    assert info.value.conn_type == "postgres"
    assert path in str(info.value)


def test_password_is_never_in_a_validation_error() -> None:
    with pytest.raises(ConnectionConfigError) as info:
        PgConfig(password="s3cret", max_size=0, min_size=0)
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(pickle.loads(pickle.dumps(info.value)))


def test_connect_kwargs_carry_statement_timeout_and_application_name() -> None:
    kwargs = connect_kwargs(PgConfig(statement_timeout=1.5, name="reports"))
    assert kwargs["server_settings"] == {"application_name": "reports", "statement_timeout": "1500"}
    assert kwargs["ssl"] is False
    assert connect_kwargs(PgConfig())["server_settings"] == {
        "application_name": "airflow-provider-integrations"
    }


def test_ssl_argument_per_mode(tls_material: TlsMaterial) -> None:
    require = ssl_argument("require", None)
    assert isinstance(require, ssl.SSLContext)
    assert require.verify_mode == ssl.CERT_NONE and not require.check_hostname
    full = ssl_argument("verify-full", tls_material.ca_cert_pem)
    assert isinstance(full, ssl.SSLContext)
    assert full.verify_mode == ssl.CERT_REQUIRED and full.check_hostname
    assert ssl_argument("disable", None) is False
