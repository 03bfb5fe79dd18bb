"""A society's billing history, made up but real: months of bills issued by
the bill run (rating.billing.run, interest on arrears included) and the
payments its residents make, recorded through the dues ledger in date order.

Seeded and fast (a few hundred operations for a small society), for the
reports' tests, docs, demo and bench. Each flat has a habit:

    prompt    pays each bill's charges before its due date
    late      pays them 3 to 45 days after the due date
    partial   pays 60 % of them around the due date
    never     pays nothing
    advance   pays a year ahead in the first month, then nothing

and `improving` makes late payers a little more punctual every month, so
the on-time ratio has a trend to show. One bill of the history is
cancelled (a credit note) and one cheque bounces.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from rating.billing.config import billing_from_mapping
from rating.billing.documents import Cycle, Unit
from rating.billing.ledger import DuesLedger
from rating.billing.ledger_payment_types import Method, PaymentRequest, ReversalRequest
from rating.billing.numbering import Numbering
from rating.billing.rules import BillingConfig
from rating.billing.run import RunInputs, issue_cycle
from rating.errors import ConfigError
from rating.inputs.textfile import parse_toml
from rating.model.site import Site

HABITS = (("prompt", 50), ("late", 25), ("partial", 10), ("never", 10), ("advance", 5))
METHODS = ((Method.GATEWAY, 45), (Method.TRANSFER, 30), (Method.CASH, 15), (Method.CHEQUE, 10))
RULES = """
[billing]
due_days = 15
[heads.maintenance]
kind = "area"
rate = 3.25
[heads.sinking_fund]
kind = "fixed"
rate = 300
[interest.interest]
method = "simple_daily"
rate = 18
"""
ACTOR = "history"
T = TypeVar("T")


@dataclass(frozen=True)
class History:
    site_id: str
    units: tuple[Unit, ...]
    habits: dict[str, str]  # account -> habit
    cycles: tuple[Cycle, ...]
    end: dt.date  # the last day payments were recorded for: the last cycle's bill date + 30


def towers(flats: int) -> list[str]:
    """Account ids `A-101`, `A-102`, ... `B-101`: a tower letter, a dash, floor and unit."""
    per_tower = max(1, -(-flats // 3))
    return [f"{'ABC'[i // per_tower]}-{1 + (i % per_tower) // 4}{1 + i % 4:02d}" for i in range(flats)]


def monthly_cycles(site_id: str, first: dt.date, count: int, due_days: int = 15) -> list[Cycle]:
    """`count` calendar months from the month of `first`, billed the next day."""
    cycles, year, month = [], first.year, first.month
    for _ in range(count):
        start = dt.date(year, month, 1)
        end = dt.date(year, month, calendar.monthrange(year, month)[1])
        billed = end + dt.timedelta(days=1)
        cycles.append(Cycle(site_id, start, end, billed, billed + dt.timedelta(days=due_days)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return cycles


def billing_rules(site_id: str) -> BillingConfig:
    site = Site(name=site_id, currency="INR", rounding="half_up")
    return billing_from_mapping(parse_toml(RULES, where="history rules", error=ConfigError),
                                where="history rules", site=site)


async def make_history(ledger: DuesLedger, *, site_id: str = "demo-society", flats: int = 24,
                       cycles: int = 14, first: dt.date = dt.date(2024, 4, 1), seed: int = 16,
                       improving: bool = True) -> History:
    """Issue `cycles` months of bills to `flats` flats and record their payments."""
    rng = random.Random(seed)
    ids = towers(flats)
    units = tuple(Unit(a, owner=f"Owner {a}", area=Decimal(rng.choice((650, 850, 1085, 1250)))) for a in ids)
    habits = {a: _pick(rng, HABITS) for a in ids}
    rules, numbering = billing_rules(site_id), Numbering()
    months = monthly_cycles(site_id, first, cycles, rules.due_days)
    pending: list[PaymentRequest] = []
    for n, cycle in enumerate(months):
        pending = await _record_until(ledger, pending, cycle.bill_date)
        await issue_cycle(ledger, RunInputs(cycle, rules, numbering, units, rules_text=RULES), actor=ACTOR)
        bills = await ledger.documents(site_id, cycle_id=cycle.cycle_id, limit=flats + 1)
        lateness = max(0.3, 1.0 - 0.06 * n) if improving else 1.0
        for bill in bills:
            pending += _payments(rng, bill, habits[bill.account_id], cycle, n, lateness, numbering)
        if n == 2:
            await _cancel_one(ledger, bills, cycle, numbering)
    end = months[-1].bill_date + dt.timedelta(days=30)
    await _record_until(ledger, pending, end + dt.timedelta(days=1))
    await _bounce_one(ledger, site_id, months[len(months) // 2], numbering)
    return History(site_id, units, habits, tuple(months), end)


def _pick(rng: random.Random, weighted: tuple[tuple[T, int], ...]) -> T:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def _payments(rng: random.Random, bill, habit: str, cycle: Cycle, n: int, lateness: float,
              numbering: Numbering) -> list[PaymentRequest]:
    """What the flat pays for this bill: nothing, or one payment."""
    charges = bill.total_minor
    if habit == "never" or charges <= 0 or (habit == "advance" and n > 0):
        return []
    if habit == "advance":
        amount, on = charges * 12, cycle.bill_date + dt.timedelta(days=rng.randint(1, 10))
    elif habit == "late" and rng.random() < lateness or habit == "prompt" and rng.random() < 0.08:
        amount, on = charges, cycle.due_date + dt.timedelta(days=rng.randint(3, 45))
    elif habit == "partial":
        amount, on = charges * 6 // 10, cycle.due_date + dt.timedelta(days=rng.randint(-10, 10))
    else:
        amount, on = charges, cycle.bill_date + dt.timedelta(days=rng.randint(1, 14))
    method = _pick(rng, METHODS)
    return [PaymentRequest(f"history:{bill.number}", bill.site_id, bill.account_id, method, amount, on, ACTOR,
                           numbering, reference=f"REF-{bill.number}")]


async def _record_until(ledger: DuesLedger, pending: list[PaymentRequest], before: dt.date
                        ) -> list[PaymentRequest]:
    """Record the payments received before `before`, in date order; the rest wait."""
    due = sorted((p for p in pending if p.received_on < before), key=lambda p: (p.received_on, p.key))
    if due:
        await ledger.pay_many(due)
    return [p for p in pending if p.received_on >= before]


async def _cancel_one(ledger: DuesLedger, bills, cycle: Cycle, numbering: Numbering) -> None:
    """The first bill of the cycle was raised by mistake: cancelled by a credit note."""
    bill = bills[0]
    await ledger.cancel(bill.site_id, bill.number, key=f"history:cancel:{bill.number}",
                        on=cycle.bill_date + dt.timedelta(days=2), reason="raised in error", actor=ACTOR,
                        numbering=numbering)


async def _bounce_one(ledger: DuesLedger, site_id: str, cycle: Cycle, numbering: Numbering) -> None:
    """The first cheque received in the cycle's month bounces, 5 days later."""
    cheques = [p for p in await ledger.payments(site_id, limit=10**6)
               if p.method == Method.CHEQUE.value and cycle.bill_date <= p.received_on < cycle.due_date]
    if cheques:
        first = cheques[0]
        await ledger.reverse(ReversalRequest(f"history:bounce:{first.receipt}", site_id, first.receipt,
                                             "bounce", first.received_on + dt.timedelta(days=5),
                                             "insufficient funds", ACTOR, numbering))
