"""Taxes by rule on the lines of a bill.

A rule taxes the lines of its named heads (charges, interest and late fees
of this bill) at a percentage, one line per part (GST 18 % as CGST 9 % and
SGST 9 %), each part rounded once by the rule's rounding (half-up unless
configured). With a threshold, the rule applies only when the unit's
contribution of the cycle, its charge lines without the pass-through heads
(water, electricity, property tax), exceeds the threshold per month times
the cycle's months (3 for a quarterly bill); then either the whole taxable
amount is taxed, or (`taxed = "excess"`) only what the contribution
exceeds the limit by, at most the taxable amount. A turnover condition is a
dated setting: the rule applies only when the setting in force on the bill
date says the society's turnover exceeds its limit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rating.billing.documents import BillLine, LineKind
from rating.billing.money import major, round_div
from rating.billing.rules import RATE_SCALE, TaxRule

PERCENT_SCALE = 100 * RATE_SCALE
# Enum members looked up once: an attribute of an Enum class costs ~0.3 µs in Python 3.11.
_CHARGE = LineKind.CHARGE
_INTEREST = LineKind.INTEREST
_LATE_FEE = LineKind.LATE_FEE
_TAX = LineKind.TAX
TAXED_KINDS = (_CHARGE, _INTEREST, _LATE_FEE)


def taxable_minor(rule: TaxRule, lines: Sequence[BillLine], months: int, exponent: int
                  ) -> tuple[int, str] | None:
    """The amount the rule taxes on these lines and why; None when it does not apply."""
    taxable = sum(line.amount_minor for line in lines
                  if line.kind in TAXED_KINDS and line.head in rule.on_heads)
    why = "whole amount of " + ", ".join(rule.on_heads)
    if rule.threshold_monthly_minor is not None:
        contribution = sum(line.amount_minor for line in lines
                           if line.kind is _CHARGE and line.head not in rule.pass_through)
        limit = rule.threshold_monthly_minor * months
        if contribution <= limit:
            return None
        if rule.excess_only:
            taxable = min(taxable, contribution - limit)
            why = f"excess of the contribution {major(contribution, exponent)} over {major(limit, exponent)}"
        else:
            why += f" (contribution {major(contribution, exponent)} over {major(limit, exponent)})"
    return (taxable, why) if taxable > 0 else None


def tax_lines(rules: Sequence[TaxRule], lines: Sequence[BillLine], months: int, bill_date: dt.date,
              exponent: int) -> list[BillLine]:
    """The tax lines of every rule that applies to the bill's lines."""
    taxes = []
    for rule in rules:
        if not rule.turnover_holds(bill_date):
            continue
        taxed = taxable_minor(rule, lines, months, exponent)
        if taxed is None:
            continue
        base, why = taxed
        for part in rule.parts:
            amount = round_div(base * part.rate_u, PERCENT_SCALE, rule.rounding)
            basis = (("rule", rule.name), ("base", major(base, exponent)), ("taxed", why),
                     ("rate", f"{part.rate} %"), ("rounding", rule.rounding)) + rule.invoice
            taxes.append(BillLine(part.name, _TAX, amount, f"{part.title} {part.rate} %", basis))
    return taxes
