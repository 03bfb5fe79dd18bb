"""The HTTP side's own rows: payment orders, gateway events, settlement reports.

They live in the ledger's PostgreSQL schema, or in `web.db` beside the SQLite
ledger file (rating.web.store_sqlite says why).

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

import datetime as dt
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass

from rating.web.settlement import Payout

TABLES = ("web_orders", "web_events", "web_settlement_lines", "web_fee_expenses")
IN_LIST_MAX = 500  # ids per IN (...) list
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
    async def book_payouts(self, payouts: tuple[Payout, ...]) -> tuple[list[Payout], int]:
        """Book the payouts not booked yet (their lines and fee expenses) in one
        transaction: (the new ones, how many were known). SettlementError when
        one was booked with other lines; then nothing is booked."""

    @abstractmethod
    async def captured_payment_ids(self, gateway: str, payment_ids: list[str]) -> set[str]:
        """Those of `payment_ids` whose captured event was answered 200."""

    @abstractmethod
    async def counts(self) -> dict[str, int]: ...


def chunks(values: list, size: int = IN_LIST_MAX) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def booked_of(rows: list[tuple]) -> dict[str, tuple]:
    """payment id -> (settlement_id, amount, fee, tax, settled_on) of booked line rows."""
    return {r[1]: (r[0], int(r[2]), int(r[3]), int(r[4]), day(r[5])) for r in rows}


def day(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def captured_key(gateway: str, payment_id: str) -> str:
    return f"gw:{gateway}:captured:{payment_id}"


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
BOOKED_SELECT = ("SELECT settlement_id, payment_id, amount_minor, fee_minor, tax_minor, settled_on "
                 "FROM web_settlement_lines WHERE gateway = {gateway} AND {column} IN ({marks})")
