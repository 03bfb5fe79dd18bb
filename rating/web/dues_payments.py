"""The webhook's payments port filled by the dues ledger: rating.payments.gateway.

One call per verified gateway payment, refund or chargeback; the ledger
records, numbers and allocates it (or holds it, or keeps it in suspense,
flagged) in a transaction keyed by the gateway's payment id, and the call
returns once that is committed.

Captured payments are committed in groups: while one transaction is being
written, the payments that arrive wait, and the next transaction takes them
all (up to `group_max`), one commit (one fsync) for the lot. An idle server
commits a lone payment at once, so grouping adds no wait; a busy one makes
fewer, larger commits. A group is all or nothing: when it fails (one bad
payment among good ones), its payments are applied one by one, so each gets
its own answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rating.billing.allocation import AllocationRule
from rating.billing.ledger import DuesLedger
from rating.billing.numbering import Numbering
from rating.errors import RatingError
from rating.payments.gateway import GatewayEvent, GatewayResult, apply_gateway_payment, apply_gateway_payments
from rating.prepaid.ledger.base import LedgerUnavailable
from rating.web.payments_port import GatewayPayment, PaymentOutcome

GROUP_MAX = 256  # payments per transaction: bounds a group's IN lists and its time under the lock


@dataclass
class _Waiting:
    event: GatewayEvent
    actor: str
    answer: asyncio.Future


class DuesGatewayPayments:
    def __init__(self, ledger: DuesLedger, *, numbering: Numbering | None = None,
                 rule: AllocationRule | None = None, group_max: int = GROUP_MAX) -> None:
        self.ledger, self.numbering, self.rule = ledger, numbering or Numbering(), rule or AllocationRule()
        self.group_max = group_max
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task | None = None

    async def apply_gateway_payment(self, payment: GatewayPayment) -> PaymentOutcome:
        event = GatewayEvent(payment.gateway, payment.payment_id, payment.kind, payment.site_id,
                             payment.account_id, payment.amount_minor, payment.received_on, payment.bill,
                             payment.event_id, payment.reason,
                             payment.object_id if payment.kind == "refunded" else "")
        if event.kind == "captured":
            result = await self._grouped(event, payment.actor)
        else:  # reversals are few: one transaction each
            result = await self._one(event, payment.actor)
        flags = tuple(dict.fromkeys((*payment.flags, *result.flags)))  # the endpoint's first, once each
        summary = result.summary
        return PaymentOutcome(result.status, result.receipt, int(summary.get("allocated_minor", 0)), flags,
                              result.replayed, {"advance_minor": int(summary.get("advance_minor", 0))})

    async def _one(self, event: GatewayEvent, actor: str) -> GatewayResult:
        return await apply_gateway_payment(self.ledger, event, actor=actor, rule=self.rule,
                                           numbering=self.numbering)

    async def _grouped(self, event: GatewayEvent, actor: str) -> GatewayResult:
        waiting = _Waiting(event, actor, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.ensure_future(self._commit_waiting())
        return await waiting.answer

    async def _commit_waiting(self) -> None:
        while self._waiting:
            group = self._waiting[:self.group_max]
            del self._waiting[:len(group)]
            try:
                await self._commit(group)
            except Exception as exc:  # unforeseen: the group's callers answer 500, the next group goes on
                _answer_all(group, exc)
            except BaseException as exc:  # cancelled at shutdown: every caller hears it
                _answer_all(group + self._waiting, exc)
                self._waiting.clear()
                raise

    async def _commit(self, group: list[_Waiting]) -> None:
        for site, actor in dict.fromkeys((w.event.site_id, w.actor) for w in group):
            part = [w for w in group if (w.event.site_id, w.actor) == (site, actor)]
            try:
                results = await apply_gateway_payments(self.ledger, [w.event for w in part], actor=actor,
                                                       rule=self.rule, numbering=self.numbering)
            except LedgerUnavailable as exc:
                _answer_all(part, exc)
                continue
            except RatingError:  # a bad payment spoils its group: each on its own, each its own answer
                await self._each(part)
                continue
            for w, result in zip(part, results, strict=True):
                if not w.answer.done():
                    w.answer.set_result(result)

    async def _each(self, part: list[_Waiting]) -> None:
        for w in part:
            try:
                result = await self._one(w.event, w.actor)
            except (RatingError, LedgerUnavailable) as exc:
                _answer_all([w], exc)
            else:
                if not w.answer.done():
                    w.answer.set_result(result)


def _answer_all(part: list[_Waiting], exc: BaseException) -> None:
    for w in part:
        if not w.answer.done():
            w.answer.set_exception(exc)
