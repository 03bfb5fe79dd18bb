"""A gateway's webhook event, read from its verified JSON body.

    {"id": "evt_01", "type": "payment.captured", "created": 1775000000,
     "data": {"payment_id": "pay_01", "amount_minor": 250000, "currency": "INR",
              "order_id": "ord_01", "unit": "A-101", "bill": "B/26-27/000007",
              "purpose": "dues"}}

`type` is one of `payment.captured`, `payment.failed`, `payment.refunded`
(with `data.refund_id`), `payment.chargeback` (with `data.dispute_id`);
`purpose` is `dues` (the default) or `topup` (with `data.wallet`: a prepaid
top-up). Amounts are integer minor units, as gateways send them. A payment
names its order, or its unit (and optionally the bill); an order says both.
Anything else is refused naming the field; nothing is applied.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from rating.errors import InputError

AMOUNT_MINOR_MAX = 2**53 - 1  # what a JSON number carries exactly everywhere
KINDS = {"payment.captured": "captured", "payment.failed": "failed", "payment.refunded": "refunded",
         "payment.chargeback": "chargeback"}
PURPOSES = ("dues", "topup")
_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
_CURRENCY = re.compile(r"[A-Z]{3}")
_OBJECT_ID_FIELD = {"captured": "payment_id", "failed": "payment_id", "refunded": "refund_id",
                    "chargeback": "dispute_id"}


class EventError(InputError):
    """A verified body that is not an event this endpoint reads."""

    reason = "BAD_EVENT"


@dataclass(frozen=True)
class GatewayEvent:
    gateway: str
    event_id: str
    kind: str  # captured | failed | refunded | chargeback
    created_s: int
    payment_id: str
    object_id: str  # what the money is: the payment, the refund, the dispute
    amount_minor: int
    currency: str
    order_id: str
    unit: str
    bill: str
    purpose: str  # dues | topup
    wallet: str
    reason: str  # a failure's or a chargeback's reason, as the gateway gives it
    body_sha256: bytes

    @property
    def key(self) -> str:
        """The idempotency key of the money: one per gateway, kind and object."""
        return f"gw:{self.gateway}:{self.kind}:{self.object_id}"


def read_event(gateway: str, body: bytes) -> GatewayEvent | None:
    """The event of `body`; None for an event type this endpoint does not handle."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EventError(f"the body is not JSON: {str(exc)[:120]}", field="body") from None
    if not isinstance(doc, dict):
        raise EventError("the body must be a JSON object", field="body")
    kind = KINDS.get(_text(doc, "type", "type", pattern=_ID))
    if kind is None:
        return None
    data = doc.get("data")
    if not isinstance(data, dict):
        raise EventError("data must be an object", field="data")
    purpose = _text(data, "purpose", "data.purpose", required=False) or "dues"
    if purpose not in PURPOSES:
        raise EventError(f"data.purpose {purpose!r} is not one of {', '.join(PURPOSES)}",
                         field="data.purpose")
    object_field = _OBJECT_ID_FIELD[kind]
    event = GatewayEvent(
        gateway, _text(doc, "id", "id", pattern=_ID), kind, _whole(doc, "created", "created", 0, 2**40),
        _text(data, "payment_id", "data.payment_id", pattern=_ID),
        _text(data, object_field, f"data.{object_field}", pattern=_ID),
        _whole(data, "amount_minor", "data.amount_minor", 1, AMOUNT_MINOR_MAX),
        _text(data, "currency", "data.currency", pattern=_CURRENCY),
        _text(data, "order_id", "data.order_id", pattern=_ID, required=False),
        _text(data, "unit", "data.unit", required=False), _text(data, "bill", "data.bill", required=False),
        purpose, _text(data, "wallet", "data.wallet", required=purpose == "topup"),
        _text(data, "reason", "data.reason", required=False), hashlib.sha256(body).digest())
    if not (event.order_id or event.unit):
        raise EventError("a payment names its data.order_id or its data.unit", field="data.unit")
    return event


def _text(doc: dict, key: str, name: str, *, required: bool = True, pattern: re.Pattern | None = None,
          chars_max: int = 256) -> str:
    value = doc.get(key)
    if value is None or value == "":
        if required:
            raise EventError(f"{name} is missing", field=name)
        return ""
    if not isinstance(value, str):
        raise EventError(f"{name} must be a string, not {type(value).__name__}", field=name)
    if len(value) > chars_max or not value.isprintable() or (pattern and not pattern.fullmatch(value)):
        raise EventError(f"{name} {value[:40]!r} is not a valid value", field=name)
    return value


def _whole(doc: dict, key: str, name: str, low: int, high: int) -> int:
    value = doc.get(key)
    if type(value) is not int:  # JSON true/false and 2500.0 are not counts of minor units
        raise EventError(f"{name} must be a whole number, not {json.dumps(value)[:40]}", field=name)
    if not low <= value <= high:
        raise EventError(f"{name} {value} is out of range {low}..{high}", field=name)
    return value
