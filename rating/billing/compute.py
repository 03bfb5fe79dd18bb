"""A unit's draft bill for a cycle: the one entry point of the bill's rules.

`draft_bill` is pure: it reads the unit, its rated usage and its open dues,
and returns the lines; it writes nothing, and the same inputs give the same
draft. Lines, in order: the heads' charges (rating.billing.heads), interest
and late fees on the open dues (rating.billing.interest), taxes on both
(rating.billing.taxes), the rounding-off line, then the arrears brought
forward (one line per head, what the open dues still owe). The
rounding-off line rounds this cycle's charges (not the arrears) to the
configured multiple (`[round_off] to = 1.00`: a whole rupee) by its rule;
it is shown only when not zero.

`check_accounts` makes the same checks up front for a whole run, so a run
with one bad unit computes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from rating.billing.cycles import billed_days, cycle_months
from rating.billing.documents import (
    BillLine,
    Cycle,
    DraftBill,
    DuesItem,
    LineKind,
    OneOffItem,
    Unit,
    UsageLine,
)
from rating.billing.heads import Span, applies, area_units, charge_lines, construction_cost
from rating.billing.interest import Paid, interest_lines
from rating.billing.money import round_div
from rating.billing.rules import BillingConfig, HeadKind
from rating.billing.taxes import tax_lines

_ROUNDING, _ARREARS = LineKind.ROUNDING, LineKind.ARREARS  # looked up once (slow Enum attributes)


def draft_bill(cycle: Cycle, account: Unit, config: BillingConfig, usage: Sequence[UsageLine] = (),
               dues: Sequence[DuesItem] = (), *, items: Sequence[OneOffItem] = (),
               paid: Sequence[Paid] = ()) -> DraftBill:
    """The unit's bill for its cycle (see the module text); `paid` what payments
    paid of its dues after they fell due (interest runs on the declining
    balance). Raises RatingError naming the file, key and account when a rule
    cannot be applied."""
    span = Span(_months(cycle), billed_days(account, cycle), _days(cycle))
    exponent = config.site.minor_unit_exponent
    lines, anomalies = charge_lines(config, account, cycle, span, usage, items)
    lines += interest_lines(config.interest, dues, cycle, span.months, exponent, paid)
    lines += tax_lines(config.taxes, lines, span.months, cycle.bill_date, exponent)
    if config.round_off is not None:
        rounded = _round_off(config, sum(line.amount_minor for line in lines))
        if rounded is not None:
            lines.append(rounded)
    lines += arrears_lines(dues, exponent)
    return DraftBill(cycle, account.account_id, account.bill_to_name, tuple(lines), tuple(anomalies),
                     account.address)


def arrears_lines(dues: Iterable[DuesItem], exponent: int) -> list[BillLine]:
    """One ARREARS line per head with what its open dues still owe (none where they net to zero)."""
    by_head: dict[str, list[DuesItem]] = {}
    for item in dues:
        by_head.setdefault(item.head, []).append(item)
    lines = []
    for head, items in by_head.items():
        amount = sum(item.amount_minor for item in items)
        if amount:
            bills = ", ".join(dict.fromkeys(item.bill_ref for item in items))
            basis = (("bills", bills), ("oldest due", min(item.due_date for item in items).isoformat()))
            lines.append(BillLine(head, _ARREARS, amount, f"Arrears: {head}", basis))
    return lines


def _round_off(config: BillingConfig, total: int) -> BillLine | None:
    rule = config.round_off
    assert rule is not None
    difference = round_div(total, rule.to_minor, rule.rounding) * rule.to_minor - total
    if difference == 0:
        return None
    return BillLine(rule.head, _ROUNDING, difference, "Rounding off", rule.basis)


def check_accounts(config: BillingConfig, accounts: Iterable[tuple[Unit, Cycle]]) -> None:
    """Raise the first error any unit's bill would raise for want of an area
    or a construction cost, before anything is computed."""
    needy = [h for h in config.heads.values() if h.kind is HeadKind.AREA or h.kind is HeadKind.FUND]
    for unit, cycle in accounts:
        for head in needy:
            if head.cost_per_area_u is None and head.kind is HeadKind.FUND:
                if unit.construction_cost_minor is None and applies(head.applies, unit, cycle):
                    construction_cost(head, config, unit)
            elif applies(head.applies, unit, cycle):
                area_units(head, config, unit)


@lru_cache(maxsize=64)
def _months(cycle: Cycle) -> int:
    return cycle_months(cycle)


def _days(cycle: Cycle) -> int:
    return (cycle.period_end - cycle.period_start).days + 1
