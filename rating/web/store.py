"""The HTTP side's own rows, in the ledger's database: payment orders and gateway events.

An order is what a payment link is made from: a bill, the amount asked, a
reference the payer sees, and an order id the gateway sends back with the
payment. An event row records each gateway event answered: its body's
SHA-256 and the answer, so a retry is answered as the first time and the
same event id with another body is refused. Both tables are append-only.

The money itself is never here: it is the dues ledger's (or the prepaid
ledger's), under the idempotency key of the payment, so a crash between the
ledger's commit and the event row loses nothing: the retry finds the
payment's key committed and gets its first result.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

TABLES = ("web_orders", "web_events")
_COLUMNS_ORDER = "order_id, site_id, op_key, account_id, bill, amount_minor, currency, reference, created_us"


@dataclass(frozen=True)
class Order:
    order_id: str
    site_id: str
    key: str  # the caller's idempotency key
    account_id: str
    bill: str
    amount_minor: int
    currency: str
    reference: str
    created_us: int

    def to_json(self) -> dict:
        return {"order_id": self.order_id, "unit": self.account_id, "bill": self.bill,
                "amount_minor": self.amount_minor, "currency": self.currency, "reference": self.reference}


@dataclass(frozen=True)
class EventRow:
    gateway: str
    event_id: str
    kind: str
    op_key: str
    body_sha256: bytes
    status: int  # the HTTP status answered
    answer: dict
    received_us: int


class WebStore(ABC):
    name = "web"

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def add_order(self, order: Order) -> Order:
        """Store `order`, or return the order stored under its id before."""

    @abstractmethod
    async def order(self, order_id: str) -> Order | None: ...

    @abstractmethod
    async def add_event(self, row: EventRow) -> EventRow:
        """Store `row`, or return the row of its (gateway, event id) stored before."""

    @abstractmethod
    async def event(self, gateway: str, event_id: str) -> EventRow | None: ...

    @abstractmethod
    async def counts(self) -> dict[str, int]: ...


def order_of(r: tuple) -> Order:
    return Order(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6], r[7], int(r[8]))


def event_of(r: tuple) -> EventRow:
    return EventRow(r[0], r[1], r[2], r[3], bytes(r[4]), int(r[5]), json.loads(r[6]), int(r[7]))


def order_values(o: Order) -> tuple:
    return (o.order_id, o.site_id, o.key, o.account_id, o.bill, o.amount_minor, o.currency, o.reference,
            o.created_us)


def event_values(e: EventRow) -> tuple:
    return (e.gateway, e.event_id, e.kind, e.op_key, e.body_sha256, e.status,
            json.dumps(e.answer, sort_keys=True), e.received_us)


ORDER_COLUMNS = _COLUMNS_ORDER
EVENT_COLUMNS = "gateway, event_id, kind, op_key, body_sha256, status, answer, received_us"
