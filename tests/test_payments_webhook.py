"""Webhook signatures: forged, replayed, truncated and re-ordered headers, secret rotation,
and event ids that repeat on retries."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from rating.errors import ConfigError
from rating.payments import GatewaySecrets, MemoryEventLog, SignatureError, WebhookVerifier, sign
from rating.payments.webhook import (
    BAD_SIGNATURE,
    BODY_TOO_LARGE,
    CONFLICT,
    DUPLICATE,
    MALFORMED_HEADER,
    NEW,
    STALE_TIMESTAMP,
    UNKNOWN_GATEWAY,
)

OLD = b"whsec_old_0123456789abcdef"
NEW_SECRET = b"whsec_new_fedcba9876543210"
NOW = 1_775_000_000
BODY = b'{"id":"evt_1","type":"payment.captured","amount":250000,"bill":"B26-0007"}'


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verifier(clock: Clock | None = None, **secrets: bytes) -> WebhookVerifier:
    return WebhookVerifier(GatewaySecrets(secrets or {"razorpay": OLD}), clock=clock or Clock())


def refused(v: WebhookVerifier, header: str | None, body: bytes = BODY, gateway: str = "razorpay") -> str:
    with pytest.raises(SignatureError) as caught:
        v.verify(gateway, header, body)
    error = caught.value
    assert error.details["gateway"] == gateway
    assert OLD.decode() not in str(error) and NEW_SECRET.decode() not in str(error)
    return error.reason


def test_the_signed_string_is_the_timestamp_a_dot_and_the_raw_body():
    expected = hmac.new(OLD, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign([OLD], NOW, BODY) == f"t={NOW},v1={expected}"
    verified = verifier().verify("razorpay", sign([OLD], NOW, BODY), BODY)
    assert (verified.gateway, verified.timestamp, verified.body) == ("razorpay", NOW, BODY)


def test_a_forged_signature_or_an_altered_body_is_refused():
    v = verifier()
    assert refused(v, sign([b"an attacker's own secret!"], NOW, BODY)) == BAD_SIGNATURE
    assert refused(v, sign([OLD], NOW, BODY), BODY.replace(b"250000", b"2500000")) == BAD_SIGNATURE
    assert refused(v, sign([OLD], NOW, BODY) + " ", BODY + b" ") == BAD_SIGNATURE


def test_a_replay_outside_the_tolerance_is_refused_either_side_of_now():
    clock = Clock()
    v = verifier(clock)
    header = sign([OLD], NOW, BODY)
    clock.now = NOW + 300
    assert v.verify("razorpay", header, BODY).timestamp == NOW  # the edge is inside
    clock.now = NOW + 301
    assert refused(v, header) == STALE_TIMESTAMP
    clock.now = NOW - 301  # a timestamp from the future
    assert refused(v, header) == STALE_TIMESTAMP


def test_a_signature_moved_onto_a_fresh_timestamp_is_refused():
    clock = Clock(NOW + 3600)
    old_signature = sign([OLD], NOW, BODY).split(",")[1]
    assert refused(verifier(clock), f"t={NOW + 3600},{old_signature}") == BAD_SIGNATURE


@pytest.mark.parametrize("header", [
    None, "", "t=1775000000", "v1=" + "a" * 64, "t=1775000000,v1=abc",  # truncated
    "t=1775000000,v1=" + "A" * 64, "t=,v1=" + "a" * 64, "t=-5,v1=" + "a" * 64, "t=1e9,v1=" + "a" * 64,
    "1775000000," + "a" * 64, "t=1775000000;v1=" + "a" * 64, "x" * 2000,
])
def test_a_malformed_or_truncated_header_is_refused_as_such(header):
    assert refused(verifier(), header) == MALFORMED_HEADER


def test_two_timestamps_are_refused_rather_than_guessed():
    good = sign([OLD], NOW, BODY)
    assert refused(verifier(), f"t={NOW - 9999},{good}") == MALFORMED_HEADER


def test_elements_in_another_order_and_other_schemes_are_accepted():
    t, v1 = sign([OLD], NOW, BODY).split(",")
    v = verifier()
    assert v.verify("razorpay", f"{v1},{t}", BODY).timestamp == NOW
    assert v.verify("razorpay", f"v0=legacy, {v1} , {t}", BODY).timestamp == NOW


def test_rotation_accepts_both_secrets_until_the_old_one_is_retired():
    secrets = GatewaySecrets({"razorpay": OLD})
    v = WebhookVerifier(secrets, clock=Clock())
    secrets.rotate("razorpay", NEW_SECRET)
    assert v.verify("razorpay", sign([OLD], NOW, BODY), BODY)
    assert v.verify("razorpay", sign([NEW_SECRET], NOW, BODY), BODY)
    assert v.verify("razorpay", sign([NEW_SECRET, OLD], NOW, BODY), BODY)  # a gateway signing with both
    secrets.retire("razorpay")
    assert refused(v, sign([OLD], NOW, BODY)) == BAD_SIGNATURE
    assert v.verify("razorpay", sign([NEW_SECRET], NOW, BODY), BODY)
    with pytest.raises(ConfigError):
        secrets.rotate("razorpay", b"short")


def test_an_unknown_gateway_and_an_oversized_body_are_refused():
    v = verifier()
    assert refused(v, sign([OLD], NOW, BODY), gateway="paytm") == UNKNOWN_GATEWAY
    big = b"x" * (v.body_bytes_max + 1)
    assert refused(v, sign([OLD], NOW, big), big) == BODY_TOO_LARGE


def test_event_ids_repeat_on_retries_and_a_changed_body_is_a_conflict():
    log = MemoryEventLog(retention_s=3600)
    assert log.claim("razorpay", "evt_1", BODY, now_s=NOW) == NEW
    assert log.claim("razorpay", "evt_1", BODY, now_s=NOW + 60) == DUPLICATE
    assert log.claim("razorpay", "evt_1", BODY + b" ", now_s=NOW + 61) == CONFLICT
    assert log.claim("stripe", "evt_1", BODY, now_s=NOW + 62) == NEW  # ids are per gateway
    assert log.claim("razorpay", "evt_1", BODY, now_s=NOW + 3601) == NEW  # past its retention
