"""Dues payments by webhook over real HTTP, into the dues ledger on both backends:
a payment of a bill is allocated once and answered after its commit; another amount,
an unknown unit or an unknown order is kept (held or in suspense) and flagged;
refunds and chargebacks reverse it; payment orders for a bill; settlement reports."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from rating.billing.documents import Cycle
from rating.payments.gateway import GatewayEvent, apply_gateway_payments
from tests.billing_drafts import batch, draft
from tests.prepaid_site import write_site
from tests.web_gateway import SECRET, Gateway, event, write_secrets
from tests.web_server import ServerThread

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
SITE = "Test Towers"  # tests/prepaid_site.py's site name: the dues ledger's site id
MAY = Cycle(SITE, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
TOKEN = "staff-token-0123456789"
RESIDENT = "resident-token-0123456789"
OTHER_SITE = "staff-token-of-another-site"
BILL = "B/25-26/{:06d}"


@pytest.fixture
def server(backends, tmp_path):
    site = write_site(tmp_path / "site", flats=4)
    secrets = write_secrets(tmp_path / "webhooks.toml", {"razorpay": [SECRET]})
    settings = backends.settings(site=str(site), http_port=0, webhook_secrets_file=str(secrets),
                                 rating_process=0,
                                 tokens=(f"{TOKEN} role=staff site='{SITE}'",
                                         f"{RESIDENT} role=resident site='{SITE}' unit=F0000",
                                         f"{OTHER_SITE} role=staff site=elsewhere"))
    with ServerThread(settings) as running:
        bills = [draft(a, MAY, maintenance=250_000, water=12_000)
                 for a in ("F0000", "F0001", "F0002", "F0003")]
        running.call(running.running.dues.issue(batch(bills, MAY)))
        yield running


def owed(server, account: str) -> int:
    items = server.call(server.running.dues.open_items(SITE)).get(account, [])
    return sum(i.amount_minor for i in items)


def payments(server, account: str = ""):
    return server.call(server.running.dues.payments(SITE, account))


def captured(amount_minor: int, unit: str, bill: str = "", **kw) -> dict:
    return event("captured", amount_minor=amount_minor, unit=unit, **({"bill": bill} if bill else {}), **kw)


def staff(method: str, server, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{server.base_url}{path}", headers={"authorization": f"Bearer {TOKEN}"},
                         **kw)


def test_a_payment_of_a_bill_is_allocated_once_and_answered_after_its_commit(server):
    gateway = Gateway(server.base_url)
    doc = captured(262_000, "F0000", BILL.format(1))
    first = gateway.post(doc)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["status"] == "applied" and answer["allocated_minor"] == 262_000 and answer["receipt"]
    assert owed(server, "F0000") == 0  # committed before the answer
    assert gateway.post(doc).json() == answer  # the gateway's retry
    again = gateway.post({**doc, "id": doc["id"] + "-b"})  # the same payment under another event id
    assert again.status_code == 200 and again.json()["receipt"] == answer["receipt"]
    assert len(payments(server, "F0000")) == 1


def test_an_amount_that_does_not_match_is_kept_as_an_advance_and_flagged(server):
    response = Gateway(server.base_url).post(captured(100_000, "F0001", BILL.format(2)))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "held" and "AMOUNT_MISMATCH" in answer["flags"]
    assert answer["allocated_minor"] == 0 and answer["advance_minor"] == 100_000
    (paid,) = payments(server, "F0001")
    assert paid.amount_minor == 100_000 and owed(server, "F0001") == 262_000


def test_a_payment_for_an_unknown_unit_or_order_is_kept_in_suspense_and_flagged(server):
    gateway = Gateway(server.base_url)
    unknown = gateway.post(captured(5_000, "Z-999"))
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["status"] == "suspense"
    assert {"UNKNOWN_UNIT", "UNKNOWN_ACCOUNT"} <= set(unknown.json()["flags"])
    orphan = gateway.post(event("captured", amount_minor=7_000, unit="", order_id="ord_nobody_knows"))
    assert orphan.json()["status"] == "suspense" and "UNKNOWN_ORDER" in orphan.json()["flags"]
    assert {p.account_id for p in payments(server)} == {"Z-999", "unknown-order:ord_nobody_knows"}
    assert all(p.suspense for p in payments(server))


def test_a_refund_or_chargeback_reverses_the_payment_and_may_not_come_first(server):
    gateway = Gateway(server.base_url)
    paid = captured(262_000, "F0002", BILL.format(3))
    payment_id = paid["data"]["payment_id"]
    early = event("chargeback", amount_minor=262_000, unit="F0002", payment_id=payment_id)
    response = gateway.post(early)
    assert response.status_code == 422 and response.json()["error"]["reason"] == "NOT_FOUND"
    assert gateway.post(paid).json()["status"] == "applied" and owed(server, "F0002") == 0
    reversed_ = gateway.post(early)  # its retry, once the capture is in: not the first answer kept
    assert reversed_.status_code == 200 and reversed_.json()["status"] == "reversed"
    assert owed(server, "F0002") == 262_000
    assert gateway.post(early).json() == reversed_.json()


def test_a_failed_payment_changes_nothing(server):
    before = server.call(server.running.dues.counts())
    response = Gateway(server.base_url).post(event("failed", amount_minor=262_000, unit="F0003",
                                                   reason="BAD_REQUEST_ERROR"))
    assert response.status_code == 200 and response.json()["status"] == "failed"
    assert server.call(server.running.dues.counts()) == before


def test_an_order_for_a_bill_is_settled_by_the_webhook_that_names_it(server):
    created = staff("POST", server, "/v1/orders", json={"bill": BILL.format(4), "key": "link-4"})
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["unit"], order["amount_minor"]) == ("F0003", 262_000)
    assert order["order_id"].startswith("ord_")
    assert staff("POST", server, "/v1/orders", json={"bill": BILL.format(4), "key": "link-4"}).json() == order
    conflict = staff("POST", server, "/v1/orders", json={"bill": BILL.format(4), "key": "link-4",
                                                         "amount_minor": 1})
    assert conflict.status_code == 409 and conflict.json()["error"]["reason"] == "IDEMPOTENCY_CONFLICT"
    assert staff("GET", server, f"/v1/orders/{order['order_id']}").json() == order
    paid = Gateway(server.base_url).post(event("captured", amount_minor=262_000, unit="",
                                               order_id=order["order_id"]))
    assert paid.json()["status"] == "applied" and owed(server, "F0003") == 0
    short = staff("POST", server, "/v1/orders", json={"bill": BILL.format(1), "key": "link-1",
                                                      "amount_minor": 100})
    mismatch = Gateway(server.base_url).post(event("captured", amount_minor=200, unit="",
                                                   order_id=short.json()["order_id"]))
    assert "ORDER_AMOUNT_MISMATCH" in mismatch.json()["flags"]


@pytest.mark.parametrize("body, status, reason", [
    ({"bill": "B/25-26/999999", "key": "k"}, 404, "UNKNOWN_BILL"),
    ({"bill": BILL.format(1)}, 400, "BAD_VALUE"),
    ({"bill": BILL.format(1), "key": "k", "amount_minor": 0}, 400, "BAD_VALUE"),
    ({"bill": BILL.format(1), "key": "k", "amount_minor": "100"}, 400, "BAD_VALUE"),
])
def test_an_order_for_an_unknown_bill_or_with_bad_fields_is_refused(server, body, status, reason):
    response = staff("POST", server, "/v1/orders", json=body)
    assert response.status_code == status and response.json()["error"]["reason"] == reason


def test_orders_and_settlements_need_a_staff_token_of_this_site(server):
    for path in ("/v1/orders", "/v1/settlements/razorpay"):
        for token, status, reason in (("wrong", 401, "UNAUTHENTICATED"), (RESIDENT, 403, "PERMISSION_DENIED"),
                                      (OTHER_SITE, 403, "PERMISSION_DENIED")):
            response = httpx.post(f"{server.base_url}{path}", content=b"{}",
                                  headers={"authorization": f"Bearer {token}"})
            assert response.status_code == status and response.json()["error"]["reason"] == reason


REPORT = """settlement_id,payment_id,amount,fee,tax,settled_on
SETL-1,{p1},2620.00,52.40,9.43,2025-06-12
SETL-1,{p2},1000.00,20.00,3.60,2025-06-12
SETL-2,pay_never_seen,10.00,0.20,0.04,2025-06-13
"""


def test_a_settlement_report_books_each_payout_once_net_of_its_fees(server):
    gateway = Gateway(server.base_url)
    ids = []
    for unit, amount in (("F0000", 262_000), ("F0001", 100_000)):
        doc = captured(amount, unit)
        assert gateway.post(doc).status_code == 200
        ids.append(doc["data"]["payment_id"])
    report = REPORT.format(p1=ids[0], p2=ids[1]).encode()
    first = staff("POST", server, "/v1/settlements/razorpay", content=report)
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["new"], result["known"], result["uncaptured"]) == (2, 0, ["pay_never_seen"])
    setl1 = result["payouts"][0]
    fee, tax = 5_240 + 2_000, 943 + 360  # the report's fees and taxes, in paise
    assert (setl1["net_minor"], setl1["fee_minor"], setl1["tax_minor"]) == (362_000 - fee - tax, fee, tax)
    again = staff("POST", server, "/v1/settlements/razorpay", content=report).json()
    assert (again["new"], again["known"]) == (0, 2)
    changed = report.replace(b"52.40", b"52.41")
    conflict = staff("POST", server, "/v1/settlements/razorpay", content=changed)
    assert conflict.status_code == 409 and conflict.json()["error"]["reason"] == "SETTLEMENT_CONFLICT"
    assert server.call(server.running.web.store.counts())["web_fee_expenses"] == 2


@pytest.mark.parametrize("report, where", [
    (b"settlement_id,payment_id,amount,fee\nS,p,1.00,0.10\n", {"row": "1"}),
    (b"settlement_id,payment_id,amount,fee,tax,settled_on\nS,p,1.005,0,0,2025-06-12\n",
     {"row": "2", "column": "amount"}),
    (b"settlement_id,payment_id,amount,fee,tax,settled_on\nS,p,1.00,2.00,0,2025-06-12\n",
     {"row": "2", "column": "fee"}),
    (b"settlement_id,payment_id,amount,fee,tax,settled_on\nS,p,1.00,0,0,12/06/2025\n",
     {"row": "2", "column": "settled_on"}),
    (b"settlement_id,payment_id,amount,fee,tax,settled_on\nS,p,1.00,0,0,2025-06-12\n"
     b"S,p,1.00,0,0,2025-06-12\n", {"row": "3", "column": "payment_id"}),
    (b"settlement_id,payment_id,amount,fee,tax,settled_on\nS,p,1.00,0,0\n", {"row": "2"}),
    (b"\xff\xfe", {}),
])
def test_a_malformed_settlement_report_is_refused_naming_row_and_column(server, report, where):
    response = staff("POST", server, "/v1/settlements/razorpay?file=june.csv", content=report)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["file"] == "june.csv" and {k: error.get(k) for k in where} == where
    assert server.call(server.running.web.store.counts())["web_settlement_lines"] == 0


def test_payments_racing_in_one_group_each_get_their_own_answer(server):
    """Concurrent payments are committed together; one the ledger refuses (its payment id
    came before with another amount) is answered alone, and the others are applied."""
    gateway = Gateway(server.base_url)
    first = captured(1_000, "F0000")
    assert gateway.post(first).status_code == 200
    clash = {**first, "id": first["id"] + "-clash", "data": {**first["data"], "amount_minor": 2_000}}
    good = [captured(262_000, unit, BILL.format(n)) for n, unit in ((2, "F0001"), (3, "F0002"), (4, "F0003"))]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(gateway.post, [*good, clash, *good]))
    assert [a.json()["status"] for a in answers[:3] + answers[4:]] == ["applied"] * 6
    assert answers[3].status_code == 422 and answers[3].json()["error"]["reason"] == "IDEMPOTENCY_CONFLICT"
    assert len({a.json()["receipt"] for a in answers[:3]}) == 3
    assert [a.json()["receipt"] for a in answers[4:]] == [a.json()["receipt"] for a in answers[:3]]
    assert all(owed(server, unit) == 0 for unit in ("F0001", "F0002", "F0003"))


def test_a_group_of_payments_with_a_replay_and_a_repeat_books_each_once(server):
    """apply_gateway_payments (the group commit) with a payment booked before and one twice."""
    def paying(unit: str, n: int) -> GatewayEvent:
        return GatewayEvent("razorpay", f"pay_group_{n}", "captured", SITE, unit, 262_000,
                            dt.date(2025, 6, 10), BILL.format(n), f"evt_group_{n}")
    dues = server.running.dues
    (before,) = server.call(apply_gateway_payments(dues, [paying("F0000", 1)], actor="gateway:razorpay"))
    results = server.call(apply_gateway_payments(
        dues, [paying("F0000", 1), paying("F0001", 2), paying("F0001", 2)], actor="gateway:razorpay"))
    assert [r.replayed for r in results] == [True, False, True]
    assert results[0].receipt == before.receipt and results[1].receipt == results[2].receipt
    assert len(payments(server)) == 2 and owed(server, "F0001") == 0
