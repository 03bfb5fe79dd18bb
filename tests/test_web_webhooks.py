"""Gateway webhooks over real HTTP: a uvicorn listener on a free loopback port, on the
server's event loop, called by httpx as a gateway would. Forged, stale, malformed and
oversized calls are refused with a JSON error and change nothing; retries are answered
as the first time; a rotated secret is taken without a restart; top-ups credit the
prepaid wallet through its movement path, once."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from rating.payments.webhook import SIGNATURE_HEADER, sign
from tests.prepaid_site import write_site
from tests.web_gateway import NEW_SECRET, SECRET, Gateway, body_of, event, write_secrets
from tests.web_server import ServerThread

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
BODY_BYTES_MAX = 4096


class NoDues:
    """These tests send top-ups only: a dues payment reaching the ledger is a failure here."""

    def __init__(self, ledger) -> None:
        self.calls = []

    async def apply_gateway_payment(self, payment):
        raise AssertionError(f"a dues payment reached the ledger: {payment}")


@pytest.fixture
def server(backends, tmp_path):
    site = write_site(tmp_path / "site", flats=4)
    secrets = write_secrets(tmp_path / "webhooks.toml", {"razorpay": [SECRET]})
    settings = backends.settings(site=str(site), http_port=0, webhook_secrets_file=str(secrets),
                                 http_body_bytes_max=BODY_BYTES_MAX, rating_process=0)
    with ServerThread(settings, payments=NoDues) as running:
        running.secrets_path = secrets
        yield running


def balance(server, account: str, wallet: str) -> int:
    states = server.call(server.service.balance(account))
    return {s.wallet: s.balance_minor for s, _ in states}[wallet]


def ledger_ops(server) -> int:
    server.call(server.service.flush())
    return server.call(server.service.ledger.counts())["ops"]


def refused(response: httpx.Response, status: int, reason: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["reason"] == reason and error["message"]
    return error


def topup(amount_minor=50000, wallet="electricity", **kw) -> dict:
    return event("captured", purpose="topup", wallet=wallet, amount_minor=amount_minor, **kw)


def test_a_top_up_credits_the_wallet_once_and_a_retry_answers_the_first_result(server):
    gateway = Gateway(server.base_url)
    before = balance(server, "F0001", "electricity")
    doc = topup(125050)
    first = gateway.post(doc)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "topped_up" and first.json()["balance_minor"] == before + 125050
    ops = ledger_ops(server)
    again = gateway.post(doc)  # the gateway's retry: a fresh signature, the same event
    assert again.status_code == 200 and again.json() == first.json()
    doc2 = {**doc, "id": doc["id"] + "-other"}  # the same payment under another event id
    assert gateway.post(doc2).json()["sequence"] == first.json()["sequence"]
    assert balance(server, "F0001", "electricity") == before + 125050
    assert ledger_ops(server) == ops


def test_a_forged_signature_or_an_altered_body_is_refused_and_nothing_changes(server):
    gateway = Gateway(server.base_url)
    ops = ledger_ops(server)
    doc = topup()
    forged = Gateway(server.base_url, secrets=("whsec_an_attacker_own_secret",))
    refused(forged.post(doc), 401, "BAD_SIGNATURE")
    body = body_of(doc)
    altered = body.replace(b'"amount_minor":50000', b'"amount_minor":5000000')
    refused(gateway.post(altered, headers=gateway.headers(body)), 401, "BAD_SIGNATURE")
    refused(gateway.post(doc, headers={"content-type": "application/json"}), 400, "MALFORMED_HEADER")
    refused(gateway.post(doc, headers={SIGNATURE_HEADER: "t=1,v1=abc"}), 400, "MALFORMED_HEADER")
    refused(Gateway(server.base_url, name="paytm").post(doc), 401, "UNKNOWN_GATEWAY")
    assert ledger_ops(server) == ops


def test_a_timestamp_outside_the_tolerance_is_refused_either_side(server):
    gateway = Gateway(server.base_url)
    now = int(time.time())
    for timestamp in (now - 301 - 5, now + 301 + 5):
        refused(gateway.post(topup(), timestamp=timestamp), 401, "STALE_TIMESTAMP")
    assert gateway.post(topup(), timestamp=now - 200).status_code == 200  # inside the 300 s


def test_a_replayed_event_with_another_body_is_refused(server):
    gateway = Gateway(server.base_url)
    doc = topup(1000)
    assert gateway.post(doc).status_code == 200
    before = balance(server, "F0001", "electricity")
    changed = {**doc, "data": {**doc["data"], "amount_minor": 999999}}
    refused(gateway.post(changed), 409, "EVENT_CONFLICT")
    assert balance(server, "F0001", "electricity") == before


def test_a_rotated_secret_is_taken_from_the_file_without_a_restart(server):
    old, new = Gateway(server.base_url), Gateway(server.base_url, secrets=(NEW_SECRET,))
    refused(new.post(topup()), 401, "BAD_SIGNATURE")
    write_secrets(server.secrets_path, {"razorpay": [NEW_SECRET, SECRET]})  # the change begins
    os.utime(server.secrets_path, ns=(time.time_ns() + 10**9,) * 2)
    time.sleep(1.1)  # the file is looked at once a second
    assert new.post(topup()).status_code == 200
    assert old.post(topup()).status_code == 200
    assert Gateway(server.base_url, secrets=(NEW_SECRET, SECRET)).post(topup()).status_code == 200
    write_secrets(server.secrets_path, {"razorpay": [NEW_SECRET]})  # the old one retired
    os.utime(server.secrets_path, ns=(time.time_ns() + 2 * 10**9,) * 2)
    time.sleep(1.1)
    refused(old.post(topup()), 401, "BAD_SIGNATURE")
    assert new.post(topup()).status_code == 200


def test_a_broken_secrets_file_keeps_the_secrets_read_before(server):
    server.secrets_path.write_text("[razorpay]\nsecrets = 'not a list'\n", encoding="utf-8")
    os.utime(server.secrets_path, ns=(time.time_ns() + 10**9,) * 2)
    time.sleep(1.1)
    assert Gateway(server.base_url).post(topup()).status_code == 200


def test_an_oversized_body_is_refused_with_413_declared_or_streamed(server):
    gateway = Gateway(server.base_url)
    big = body_of({**topup(), "padding": "x" * BODY_BYTES_MAX})
    refused(gateway.post(big), 413, "BODY_TOO_LARGE")

    def chunks():  # no Content-Length: the body arrives chunked and is cut at the limit
        yield big[:1000]
        yield big[1000:]
    response = httpx.post(f"{server.base_url}/webhooks/razorpay", content=chunks(),
                          headers=gateway.headers(big))
    refused(response, 413, "BODY_TOO_LARGE")


@pytest.mark.parametrize("body, field", [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b"\xff\xfe{}", "body"),
    (b"[" * 2000 + b"]" * 2000, "body"),  # nested past the parser's depth
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": []}', "data"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": 2500.5, "currency": "INR", "unit": "F0001"}}', "data.amount_minor"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": true, "currency": "INR", "unit": "F0001"}}', "data.amount_minor"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": -5, "currency": "INR", "unit": "F0001"}}', "data.amount_minor"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": 100000000000000000000, "currency": "INR", "unit": "F0001"}}', "data.amount_minor"),
    (b'{"id": "e 1", "type": "payment.captured", "created": 1, "data": {}}', "id"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": 5, "currency": "INR"}}', "data.unit"),
    (b'{"id": "e1", "type": "payment.captured", "created": 1, "data": {"payment_id": "p", '
     b'"amount_minor": 5, "currency": "INR", "unit": "F0001", "purpose": "topup"}}', "data.wallet"),
])
def test_a_malformed_event_is_refused_naming_the_field(server, body, field):
    ops = ledger_ops(server)
    error = refused(Gateway(server.base_url).post(body), 400, "BAD_EVENT")
    assert error["field"] == field
    assert ledger_ops(server) == ops


def test_a_top_up_for_an_unknown_unit_or_wallet_is_refused_at_every_retry(server):
    gateway = Gateway(server.base_url)
    ops = ledger_ops(server)
    doc = topup(unit="Z9999")
    first = refused(gateway.post(doc), 422, "UNKNOWN_ACCOUNT")
    assert "Z9999" in first["message"]
    refused(gateway.post(doc), 422, "UNKNOWN_ACCOUNT")  # its retry: the same answer
    refused(gateway.post(event("captured", purpose="topup", wallet="bogus")), 422, "BAD_VALUE")
    refused(gateway.post(event("captured", purpose="topup", wallet="electricity", currency="USD")), 422,
            "CURRENCY_MISMATCH")
    assert ledger_ops(server) == ops


def test_a_top_up_refund_or_chargeback_takes_the_money_back_even_below_zero(server):
    gateway = Gateway(server.base_url)
    before = balance(server, "F0002", "water")
    paid = topup(3000, unit="F0002", wallet="water")
    assert gateway.post(paid).status_code == 200
    payment_id = paid["data"]["payment_id"]
    refund = event("refunded", purpose="topup", wallet="water", unit="F0002", amount_minor=1000,
                   payment_id=payment_id)
    assert gateway.post(refund).json()["status"] == "reversed"
    chargeback = event("chargeback", purpose="topup", wallet="water", unit="F0002",
                       amount_minor=before + 5000, payment_id=payment_id)
    assert gateway.post(chargeback).status_code == 200
    assert balance(server, "F0002", "water") == before + 3000 - 1000 - (before + 5000)


def test_other_event_types_are_acknowledged_and_ignored_and_health_answers(server):
    ops = ledger_ops(server)
    response = Gateway(server.base_url).post({"id": "evt_x", "type": "order.paid", "data": {}})
    assert response.status_code == 200 and response.json() == {"status": "ignored"}
    assert httpx.get(f"{server.base_url}/health").json() == {"status": "SERVING"}
    refused(httpx.get(f"{server.base_url}/nowhere"), 404, "NOT_FOUND")
    refused(httpx.get(f"{server.base_url}/webhooks/razorpay"), 405, "METHOD_NOT_ALLOWED")
    assert ledger_ops(server) == ops


def test_the_signature_is_over_the_raw_bytes_not_a_re_encoding(server):
    doc = topup(777)
    body = b'{ "type" : "payment.captured", ' + body_of(doc)[1:]  # other spacing, the same JSON
    gateway = Gateway(server.base_url)
    assert gateway.post(body).status_code == 200
    header = sign([SECRET.encode()], int(time.time()), body_of(doc))
    refused(gateway.post(body, headers={SIGNATURE_HEADER: header}), 401, "BAD_SIGNATURE")
