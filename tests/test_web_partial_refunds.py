"""A gateway's refund of part of a payment over real HTTP, on both backends:
that part only comes back (its dues open again), once per refund id whatever
the retries, never more in all than the payment (422, nothing written)."""

from __future__ import annotations

from tests.test_web_payments import BILL, captured, owed, payments, server  # noqa: F401 (server: fixture)
from tests.web_gateway import Gateway, event

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server


def test_parts_of_a_payment_are_refunded_once_each_and_never_past_it(server):  # noqa: F811
    gateway = Gateway(server.base_url)
    paid = captured(262_000, "F0003", BILL.format(4))
    payment_id = paid["data"]["payment_id"]
    assert gateway.post(paid).json()["status"] == "applied" and owed(server, "F0003") == 0

    def refund(amount_minor: int, refund_id: str, **kw) -> dict:
        return event("refunded", amount_minor=amount_minor, unit="F0003", payment_id=payment_id,
                     refund_id=refund_id, **kw)

    first = refund(12_000, "rfnd_a")
    answer = gateway.post(first)
    retried = gateway.post(first)
    other_event = gateway.post(refund(12_000, "rfnd_a"))  # the same refund under another event id
    after_first = owed(server, "F0003")
    too_much = gateway.post(refund(250_001, "rfnd_b"))
    unchanged = owed(server, "F0003")
    rest = gateway.post(refund(250_000, "rfnd_c"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "reversed" and retried.json() == answer.json()
    assert other_event.status_code == 200 and other_event.json()["receipt"] == answer.json()["receipt"]
    assert after_first == 12_000  # the newest due first: 120.00 of the water line open again
    assert too_much.status_code == 422 and too_much.json()["error"]["reason"] == "LIMIT_EXCEEDED"
    assert unchanged == 12_000
    assert rest.status_code == 200 and owed(server, "F0003") == 262_000
    assert [p.amount_minor for p in payments(server, "F0003")] == [262_000]  # one receipt, refunded in parts
