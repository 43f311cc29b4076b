"""Standard Webhooks signing and verification: pure functions, no server."""

from __future__ import annotations

import base64
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_integrations.webhooks import (
    SignatureError,
    Signer,
    Verifier,
    WebhookConfigError,
    generate_keypair,
    generate_secret,
)
from airflow_provider_integrations.webhooks.keys import parse_key
from airflow_provider_integrations.webhooks.signing import MAX_SIGNATURES, signed_content

# The Standard Webhooks specification's published test vector (also in every reference library's tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
NOW = 1_700_000_000


def vector_headers(signature: str = VECTOR_SIGNATURE, **overrides: str) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TS),
        "webhook-signature": signature,
        **overrides,
    }


def test_signer_reproduces_the_published_vector() -> None:
    assert (
        Signer.from_secrets([VECTOR_SECRET]).signature(VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE
    )


def test_verifier_accepts_the_published_vector_among_other_signatures() -> None:
    header = f"v1,bm9wZQ== v2,whatever {VECTOR_SIGNATURE}"
    message = Verifier.from_secrets([VECTOR_SECRET]).verify(
        vector_headers(header), VECTOR_BODY, now=VECTOR_TS
    )
    assert (message.webhook_id, message.timestamp) == (VECTOR_ID, VECTOR_TS)


def test_prefixless_secret_is_the_same_key_as_the_reference_libraries_have_it() -> None:
    bare = VECTOR_SECRET.removeprefix("whsec_")
    assert Signer.from_secrets([bare]).signature(VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_signed_content_is_id_dot_timestamp_dot_body() -> None:
    assert signed_content("a", 12, b"{}") == b"a.12.{}"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v1,h0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, "no_valid_signature"),
        ({"webhook-signature": "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, "no_valid_signature"),
        ({"webhook-signature": "v1,not base64!"}, "no_valid_signature"),
        ({"webhook-signature": ""}, "missing_header"),
        ({"webhook-id": "msg_other"}, "no_valid_signature"),
        ({"webhook-id": "x" * 257}, "invalid_webhook_id"),
        ({"webhook-id": "has space"}, "invalid_webhook_id"),
        ({"webhook-timestamp": "1614265331"}, "no_valid_signature"),
        ({"webhook-timestamp": "1614265330.5"}, "invalid_timestamp"),
        ({"webhook-timestamp": "-5"}, "invalid_timestamp"),
    ],
)
def test_each_tampered_header_is_refused_with_its_reason(change: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        Verifier.from_secrets([VECTOR_SECRET]).verify(vector_headers(**change), VECTOR_BODY, now=VECTOR_TS)
    assert caught.value.reason == reason


def test_missing_headers_and_case_insensitive_names() -> None:
    verifier = Verifier.from_secrets([VECTOR_SECRET])
    with pytest.raises(SignatureError) as caught:
        verifier.verify({}, VECTOR_BODY, now=VECTOR_TS)
    assert caught.value.reason == "missing_header"
    shouty = {k.upper(): v for k, v in vector_headers().items()}
    assert verifier.verify(shouty, VECTOR_BODY, now=VECTOR_TS).webhook_id == VECTOR_ID


def test_a_changed_body_byte_fails() -> None:
    with pytest.raises(SignatureError, match="no signature matches"):
        Verifier.from_secrets([VECTOR_SECRET]).verify(vector_headers(), VECTOR_BODY + b" ", now=VECTOR_TS)


def test_timestamp_tolerance_applies_in_both_directions() -> None:
    verifier = Verifier.from_secrets([VECTOR_SECRET])
    for now in (VECTOR_TS - 300, VECTOR_TS + 300):  # the edges are inside
        verifier.verify(vector_headers(), VECTOR_BODY, now=now)
    with pytest.raises(SignatureError) as stale:
        verifier.verify(vector_headers(), VECTOR_BODY, now=VECTOR_TS + 301)
    with pytest.raises(SignatureError) as future:
        verifier.verify(vector_headers(), VECTOR_BODY, now=VECTOR_TS - 301)
    assert (stale.value.reason, future.value.reason) == ("stale_timestamp", "future_timestamp")
    verifier.verify(vector_headers(), VECTOR_BODY, now=VECTOR_TS + 3000, tolerance=3600)


def test_rotation_old_and_new_secrets_are_both_accepted() -> None:
    old, new, stranger = generate_secret(), generate_secret(), generate_secret()
    verifier = Verifier.from_secrets(f"{new} {old}")  # one env-var style string
    for secret in (old, new):
        headers = Signer.from_secrets([secret]).headers(b"{}", timestamp=NOW)
        verifier.verify(headers, b"{}", now=NOW)
    # A sender mid-rotation signs with both; a verifier that knows only one of them still accepts.
    both = Signer.from_secrets([new, old]).headers(b"{}", timestamp=NOW)
    assert len(both["webhook-signature"].split()) == 2
    Verifier.from_secrets([old]).verify(both, b"{}", now=NOW)
    with pytest.raises(SignatureError):
        verifier.verify(Signer.from_secrets([stranger]).headers(b"{}", timestamp=NOW), b"{}", now=NOW)


def test_ed25519_v1a_signatures() -> None:
    private, public = generate_keypair()
    headers = Signer.from_secrets([private]).headers(b'{"a":1}', timestamp=NOW)
    assert headers["webhook-signature"].startswith("v1a,")
    assert Verifier.from_secrets([public]).verify(headers, b'{"a":1}', now=NOW).timestamp == NOW
    assert Verifier.from_secrets([private]).verify(headers, b'{"a":1}', now=NOW)  # private verifies too
    other_public = generate_keypair()[1]
    with pytest.raises(SignatureError):
        Verifier.from_secrets([other_public]).verify(headers, b'{"a":1}', now=NOW)
    # A whpk_ key must not be taken for an HMAC secret: its v1 signature would be forgeable by anyone.
    forged = Signer.from_secrets(["whsec_" + public.removeprefix("whpk_")]).headers(b"{}", timestamp=NOW)
    with pytest.raises(SignatureError):
        Verifier.from_secrets([public]).verify(forged, b"{}", now=NOW)


def test_private_key_32_and_64_byte_forms_are_the_same_key() -> None:
    private, public = generate_keypair()
    raw = base64.b64decode(private.removeprefix("whsk_"))
    assert len(raw) == 64
    seed_only = "whsk_" + base64.b64encode(raw[:32]).decode()
    headers = Signer.from_secrets([seed_only]).headers(b"x", timestamp=NOW)
    Verifier.from_secrets([public]).verify(headers, b"x", now=NOW)
    mismatched = "whsk_" + base64.b64encode(raw[:32] + bytes(32)).decode()
    with pytest.raises(WebhookConfigError, match="public half"):
        parse_key(mismatched)


def test_only_the_first_signatures_are_tried() -> None:
    secret = generate_secret()
    good = Signer.from_secrets([secret]).signature("m", NOW, b"{}")
    junk = " ".join(["v1a,AAAA"] * MAX_SIGNATURES)
    headers = {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": f"{junk} {good}"}
    with pytest.raises(SignatureError):
        Verifier.from_secrets([secret]).verify(headers, b"{}", now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a whsec_, whsk_ or whpk_ key"),
        ("whsec_not*base64", "whsec_ followed by base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsk_AAAA", "whsk_ followed by base64"),
        ("whpk_AAAA", "whpk_ followed by base64"),
    ],
)
def test_bad_keys_name_the_field_and_never_show_a_secret(text: str, expected: str) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        Verifier.from_secrets([text], field="PARTNER_SECRET")
    message = str(caught.value)
    assert message.startswith("PARTNER_SECRET[0]") and expected in message
    if text.startswith("whsec_") and len(text) > 6:
        assert text[6:] not in message and text[6:] not in repr(pickle.loads(pickle.dumps(caught.value)))


def test_signer_refuses_a_public_key_and_empty_key_lists() -> None:
    with pytest.raises(WebhookConfigError, match="cannot sign"):
        Signer.from_secrets([generate_keypair()[1]])
    with pytest.raises(WebhookConfigError, match="at least one"):
        Verifier.from_secrets([])


def test_reprs_hide_key_material() -> None:
    secret = generate_secret()
    private, _ = generate_keypair()
    for obj in (
        parse_key(secret),
        parse_key(private),
        Signer.from_secrets([secret]),
        Verifier.from_secrets([secret]),
    ):
        assert secret[6:] not in repr(obj) and private[5:] not in repr(obj)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=2000),
    webhook_id=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=80
    ),
    flip=st.integers(min_value=0),
)
def test_roundtrip_and_any_flipped_body_bit_fails(body: bytes, webhook_id: str, flip: int) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    headers = Signer.from_secrets([secret]).headers(body, webhook_id=webhook_id, timestamp=NOW)
    verifier = Verifier.from_secrets([secret])
    assert verifier.verify(headers, body, now=NOW).webhook_id == webhook_id
    if body:
        i = flip % (len(body) * 8)
        tampered = bytearray(body)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(SignatureError):
            verifier.verify(headers, bytes(tampered), now=NOW)
