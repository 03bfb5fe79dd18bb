"""The webhook's payments port filled by the dues ledger: rating.payments.gateway.

One call per verified gateway payment, refund or chargeback;
`apply_gateway_payment` there records, numbers and allocates it (or holds it,
or keeps it in suspense, flagged) in one transaction keyed by the gateway's
payment id, and returns once it is committed.
"""

from __future__ import annotations

from rating.billing.allocation import AllocationRule
from rating.billing.ledger import DuesLedger
from rating.billing.numbering import Numbering
from rating.payments.gateway import GatewayEvent, apply_gateway_payment
from rating.web.payments_port import GatewayPayment, PaymentOutcome


class DuesGatewayPayments:
    def __init__(self, ledger: DuesLedger, *, numbering: Numbering | None = None,
                 rule: AllocationRule | None = None) -> None:
        self.ledger, self.numbering, self.rule = ledger, numbering or Numbering(), rule or AllocationRule()

    async def apply_gateway_payment(self, payment: GatewayPayment) -> PaymentOutcome:
        event = GatewayEvent(payment.gateway, payment.payment_id, payment.kind, payment.site_id,
                             payment.account_id, payment.amount_minor, payment.received_on, payment.bill,
                             payment.event_id, payment.reason)
        result = await apply_gateway_payment(self.ledger, event, actor=payment.actor, rule=self.rule,
                                             numbering=self.numbering)
        summary = result.summary
        flags = tuple(dict.fromkeys((*payment.flags, *result.flags)))  # the endpoint's first, once each
        return PaymentOutcome(result.status, result.receipt, int(summary.get("allocated_minor", 0)), flags,
                              result.replayed, {"advance_minor": int(summary.get("advance_minor", 0))})
