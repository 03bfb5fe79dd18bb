"""Gateway payments into the dues ledger: a verified event applied once.

The HTTP side verifies the call (rating.payments.webhook) and parses its
body into a `GatewayEvent`; `apply_gateway_payment` books it and returns
only when it is committed, so a 2xx answer means the money is in the
ledger. The gateway's payment id is the idempotency key (another event id
of the same payment, a retry after a crash: the first result again):

- `captured`: a payment. When it names a bill that is open and pays what
  that bill still owes, it is allocated by the site's rule. Anything else
  that is authentic is kept, never lost, and flagged for staff: an unknown
  account goes to suspense; another amount, an unknown, cancelled or
  settled bill is held unallocated as the account's advance.
- `refunded`, `chargeback`: the captured payment is reversed (its
  allocations undone by new entries); one that was never captured is an
  error (the gateway retries; it should not come first). A refund of part
  of the payment (`amount_minor` below the payment's) gives back only that
  part, once per `refund_id`, never more in all than the payment.
- `failed`: nothing moves; the result says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from rating.billing.allocation import AllocationRule
from rating.billing.ledger import DuesLedger, NotFound, OpResult
from rating.billing.ledger_payment_types import Method, PaymentRequest, ReversalRequest
from rating.billing.numbering import Numbering
from rating.errors import InputError

EVENT_KINDS = ("captured", "failed", "refunded", "chargeback")
REVERSAL_OF = {"refunded": "refund", "chargeback": "chargeback"}  # an event kind -> the ledger's reversal


@dataclass(frozen=True)
class GatewayEvent:
    """A verified gateway event, as the HTTP side parsed it."""

    gateway: str  # e.g. "razorpay": with payment_id, names the payment
    payment_id: str
    kind: str  # one of EVENT_KINDS
    site_id: str
    account_id: str
    amount_minor: int  # the payment's amount, integer minor units
    paid_on: dt.date  # the day it was captured (site time)
    bill: str = ""  # the bill (payment link, order) it pays, when known
    event_id: str = ""  # the gateway's event id (not part of the payment's identity)
    reason: str = ""  # refunded / chargeback: the gateway's reason
    refund_id: str = ""  # refunded: the gateway's id of the refund (a part refunded is keyed by it)


@dataclass(frozen=True)
class GatewayResult:
    """What was booked: `status` is applied | held | suspense | reversed |
    failed; `replayed` when the event was booked before."""

    status: str
    receipt: str
    flags: tuple[str, ...]
    replayed: bool
    summary: dict = field(default_factory=dict)


async def apply_gateway_payment(ledger: DuesLedger, event: GatewayEvent, *, actor: str,
                                rule: AllocationRule | None = None,
                                numbering: Numbering | None = None) -> GatewayResult:
    """Book a verified gateway event once (see the module text). Raises
    InputError (nothing written) for an event that cannot be booked: an
    unknown kind, an amount that is not a positive integer, a refund of a
    payment never captured; DuesConflict when the payment id comes back with
    another amount or account."""
    _check(event)
    numbering = numbering or Numbering()
    key = _key(event)
    if event.kind == "failed":
        return GatewayResult("failed", "", (), False, {"payment_id": event.payment_id})
    if event.kind == "captured":
        request = await _payment(ledger, event, key, actor, rule or AllocationRule(), numbering)
        result = await ledger.pay(request)
        return _result(result)
    first = await ledger.find(key)
    if first is None:
        raise NotFound(f"gateway {event.gateway} payment {event.payment_id} was never captured here; "
                       "nothing was written", where=f"payment {event.payment_id}")
    return await _reverse(ledger, event, key, first, actor, numbering)


async def _reverse(ledger: DuesLedger, event: GatewayEvent, key: str, first: OpResult, actor: str,
                   numbering: Numbering) -> GatewayResult:
    """A refund (whole, or of a part: once per refund id) or a chargeback of the payment `first` booked."""
    receipt, paid_minor = first.summary["receipt"], first.summary["amount_minor"]
    where = f"payment {event.payment_id}"
    if event.kind == "refunded" and event.amount_minor > paid_minor:
        raise InputError(f"a refund of {event.amount_minor} is above the payment's {paid_minor}; nothing was "
                         "written", where=where, reason="LIMIT_EXCEEDED")
    if event.kind == "refunded" and event.amount_minor < paid_minor:
        if not event.refund_id:
            raise InputError("a refund of part of a payment names its refund id", where=where)
        reversed_ = await ledger.refund_part(f"{key}:refund:{event.refund_id}", event.site_id, receipt,
                                             event.amount_minor, on=event.paid_on,
                                             reason=event.reason or "refund", actor=actor)
    else:
        kind = REVERSAL_OF[event.kind]
        reversal = ReversalRequest(f"{key}:{event.kind}", event.site_id, receipt, kind, event.paid_on,
                                   event.reason or kind, actor, numbering)
        reversed_ = await ledger.reverse(reversal)
    return GatewayResult("reversed", receipt, (), reversed_.replayed, reversed_.summary)


async def apply_gateway_payments(ledger: DuesLedger, events: Sequence[GatewayEvent], *, actor: str,
                                 rule: AllocationRule | None = None,
                                 numbering: Numbering | None = None) -> list[GatewayResult]:
    """`apply_gateway_payment` of many captured payments of one site in one
    transaction (ledger.pay_many: all or nothing), in order: a group commit."""
    requests = []
    for event in events:
        _check(event)
        if event.kind != "captured":
            raise InputError(f"only captured payments are booked together, not {event.kind!r}",
                             where=f"payment {event.payment_id}")
        requests.append(await _payment(ledger, event, _key(event), actor, rule or AllocationRule(),
                                       numbering or Numbering()))
    return [_result(result) for result in await ledger.pay_many(requests)]


def _key(event: GatewayEvent) -> str:
    return f"gateway:{event.gateway}:{event.payment_id}"


def _check(event: GatewayEvent) -> None:
    if event.kind not in EVENT_KINDS:
        raise InputError(f"event kind {event.kind!r}: one of {', '.join(EVENT_KINDS)}",
                         where=f"payment {event.payment_id}")
    if type(event.amount_minor) is not int or event.amount_minor <= 0:
        raise InputError(f"amount must be a positive integer of minor units, got {event.amount_minor!r}",
                         where=f"payment {event.payment_id}")
    for name in ("gateway", "payment_id", "site_id"):
        if not getattr(event, name):
            raise InputError(f"{name} is missing", where=f"payment {event.payment_id or '?'}")


async def _payment(ledger: DuesLedger, event: GatewayEvent, key: str, actor: str, rule: AllocationRule,
                   numbering: Numbering) -> PaymentRequest:
    """The payment to record, strict: the ledger allocates it only when it pays
    what its bill owes, and holds (or keeps in suspense) and flags it otherwise,
    deciding in the transaction that books it."""
    return PaymentRequest(key, event.site_id, event.account_id, Method.GATEWAY, event.amount_minor,
                          event.paid_on, actor, numbering, rule, reference=event.payment_id,
                          bill=event.bill, strict=True, note=f"{event.gateway} {event.event_id}".strip())


def _result(result: OpResult) -> GatewayResult:
    summary = result.summary
    status = "suspense" if summary["suspense"] else "held" if summary["held"] else "applied"
    return GatewayResult(status, summary["receipt"], tuple(summary.get("flags", ())), result.replayed,
                         summary)
