"""What the webhook hands the dues ledger: one verified gateway payment, once.

The endpoint knows HTTP, signatures and events; the ledger knows receipts,
allocation, suspense and advances. `GatewayPayments` is the one method
between them, so the ledger side is wired in one place
(`rating.web.service.build_web`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GatewayPayment:
    """A verified captured payment, refund or chargeback of a gateway, for the dues ledger.

    The gateway and its payment id name the money: a gateway's retry, or the
    same payment under another event id, must return the first result; a
    refund or a chargeback undoes the captured payment of that id.
    `account_id` and `bill` are what the order (or the event) says. A payment
    that matches nothing due is still recorded (suspense, or held as an
    advance) and flagged: it is money the society holds.
    """

    site_id: str
    gateway: str
    event_id: str
    kind: str  # captured | refunded | chargeback
    payment_id: str  # the gateway's payment id: the receipt's reference
    account_id: str  # `unknown-order:<id>` when neither the order nor the event names a unit
    bill: str
    order_id: str
    amount_minor: int
    received_on: dt.date  # the site's local date of the event
    reason: str
    actor: str  # gateway:<name>
    flags: tuple[str, ...] = ()  # the endpoint's: UNKNOWN_ORDER, UNKNOWN_UNIT, ORDER_AMOUNT_MISMATCH
    object_id: str = ""  # a refund's or a dispute's own id (a part refunded is keyed by it)


@dataclass(frozen=True)
class PaymentOutcome:
    """The committed result: what the webhook answers, and answers again on a retry."""

    status: str  # applied | held | suspense | reversed (rating.payments.gateway)
    receipt: str  # the receipt (or reversal) number the ledger gave the payment
    allocated_minor: int
    flags: tuple[str, ...] = ()
    replayed: bool = False
    detail: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"status": self.status, "receipt": self.receipt, "allocated_minor": self.allocated_minor,
                "flags": list(self.flags), **self.detail}


class GatewayPayments(Protocol):
    async def apply_gateway_payment(self, payment: GatewayPayment) -> PaymentOutcome:
        """Record and allocate `payment` in one transaction, or return the first
        result of its key; returns only once it is committed."""
