"""Callback ids and registrations, payload encryption and store URLs: pure logic."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_integrations.webhooks import (
    CallbackRegistration,
    PayloadCodec,
    PayloadDecryptError,
    PostgresCallbackStore,
    SqliteCallbackStore,
    WebhookConfigError,
    callback_url,
    generate_payload_key,
    new_callback_id,
    store_from_url,
)
from tests.webhooks.conftest import registration

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_callback_ids_are_long_urlsafe_and_unique() -> None:
    ids = {new_callback_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)


def test_url_is_base_plus_callbacks_plus_id() -> None:
    cid = new_callback_id()
    assert (
        callback_url("https://hooks.example.com/airflow/", cid)
        == f"https://hooks.example.com/airflow/callbacks/{cid}"
    )
    for bad in ("ftp://x", "/relative", "https://x/?token=1", "https://x/#f", ""):
        with pytest.raises(WebhookConfigError, match="base_url"):
            callback_url(bad, cid)
    with pytest.raises(WebhookConfigError, match="callback_id"):
        callback_url("https://x", "../../etc")


def test_registration_binds_a_task_try_and_expires() -> None:
    reg = CallbackRegistration.new(
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=3,
        try_number=2,
        secret_name="partner_conn",
        ttl=90,
        now=T0,
    )
    assert (reg.expires_at - reg.created_at) == timedelta(seconds=90)
    assert not reg.expired(T0 + timedelta(seconds=89)) and reg.expired(T0 + timedelta(seconds=90))
    assert reg.url("http://h:1").endswith("/callbacks/" + reg.callback_id)
    other_tz = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert (
        CallbackRegistration.new(
            dag_id="d", run_id="r", task_id="t", secret_name="s", ttl=1, now=other_tz
        ).created_at
        == T0
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dag_id": ""}, "dag_id"),
        ({"task_id": "x" * 251}, "task_id"),
        ({"secret_name": "has space"}, "secret_name"),
        ({"map_index": -2}, "map_index"),
        ({"try_number": -1}, "try_number"),
        ({"ttl": 0}, "ttl"),
        ({"now": datetime(2026, 1, 1)}, "now"),  # naive
        ({"schema": {"type": "nonsense"}}, "schema"),
        ({"schema": {"type": "object", "bad": object()}}, "schema"),
    ],
)
def test_registration_errors_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        registration(**change)  # type: ignore[arg-type]
    assert caught.value.field == field and str(caught.value).startswith(field)


def test_schema_is_copied_so_later_mutation_cannot_change_the_record() -> None:
    schema = {"type": "object", "required": ["status"]}
    reg = registration(schema=schema)
    schema["required"].append("other")
    assert reg.schema == {"type": "object", "required": ["status"]}
    assert reg.schema_json == '{"required":["status"],"type":"object"}'
    assert hash(reg) == hash(reg)  # frozen and hashable despite the mapping


def test_codec_encrypts_binds_to_the_callback_and_rotates() -> None:
    old, new = generate_payload_key(), generate_payload_key()
    before = PayloadCodec([old])
    blob = before.encode("cb1", b'{"secret-ish": 1}')
    assert b"secret-ish" not in blob and before.decode("cb1", blob) == b'{"secret-ish": 1}'
    rotated = PayloadCodec(f"{new} {old}")
    assert rotated.decode("cb1", blob) == b'{"secret-ish": 1}'  # old rows stay readable
    fresh = rotated.encode("cb1", b"{}")
    with pytest.raises(PayloadDecryptError, match="not among the configured"):
        before.decode("cb1", fresh)  # written with the new key
    with pytest.raises(PayloadDecryptError, match="moved from another callback"):
        before.decode("cb2", blob)
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(PayloadDecryptError, match="tampered"):
        before.decode("cb1", tampered)


def test_plain_codec_and_mixed_rows() -> None:
    plain = PayloadCodec()
    assert not plain.encrypts and plain.encode("cb", b"{}") == b"\x00{}"
    keyed = PayloadCodec([generate_payload_key()])
    assert keyed.decode("cb", plain.encode("cb", b"{}")) == b"{}"  # rows from before encryption was on
    with pytest.raises(PayloadDecryptError, match="not among the configured"):
        plain.decode("cb", keyed.encode("cb", b"{}"))
    with pytest.raises(PayloadDecryptError, match="unknown format"):
        plain.decode("cb", b"\x07junk")


def test_bad_encryption_key_names_the_position_not_the_value() -> None:
    with pytest.raises(WebhookConfigError) as caught:
        PayloadCodec([generate_payload_key(), "c2hvcnQ="])
    assert str(caught.value).startswith("encryption_keys[1]: expected") and "c2hvcnQ" not in str(caught.value)


def test_store_urls() -> None:
    rel = store_from_url("sqlite:///relative/cb.db")
    absolute = store_from_url("sqlite:////var/tmp/cb.db")
    assert isinstance(rel, SqliteCallbackStore) and rel.path == "relative/cb.db"
    assert isinstance(absolute, SqliteCallbackStore) and absolute.path == "/var/tmp/cb.db"
    pg = store_from_url("postgresql://app:pw@db.internal:5433/airflow?schema=hooks&table=cb&max_size=3")
    assert isinstance(pg, PostgresCallbackStore)
    assert (pg.config.host, pg.config.port, pg.config.user, pg.config.password) == (
        "db.internal",
        5433,
        "app",
        "pw",
    )
    assert (pg.config.database, pg.schema, pg.table, pg.config.max_size) == ("airflow", "hooks", "cb", 3)
    for bad in ("mysql://x/y", "sqlite://host/x.db", "sqlite:///", "postgresql://u:hunter2@h/db?bogus=1"):
        with pytest.raises(WebhookConfigError) as caught:
            store_from_url(bad)
        assert caught.value.field == "store" and "hunter2" not in str(caught.value)
