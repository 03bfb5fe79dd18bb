"""A slow, readable Decimal reference of a unit's bill: the rules of
docs/billing.md written down plainly, day by day where a rule counts days.

`reference_bill` gives each line as (head, kind, amount in minor units, ref)
in the fast path's order; property tests hold `compute.draft_bill` equal to
it. Each amount is computed exactly (Decimal with ample precision, every
division last) and rounded once to the minor unit by the rule's rounding.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Context, Decimal, localcontext

from rating.billing.documents import Cycle, DuesItem, LineKind, OneOffItem, Unit, UsageLine
from rating.billing.interest import Paid
from rating.billing.rules import BillingConfig, Head, HeadKind, InterestRule, Method, TaxRule
from rating.errors import RatingError
from rating.model.site import ROUNDING_RULES

Line = tuple[str, LineKind, int, str]
HUNDRED = Decimal(100)


def reference_bill(cycle: Cycle, unit: Unit, config: BillingConfig, usage: Sequence[UsageLine] = (),
                   dues: Sequence[DuesItem] = (), items: Sequence[OneOffItem] = (),
                   paid: Sequence[Paid] = ()) -> list[Line]:
    with localcontext(Context(prec=400)):
        exponent = config.site.minor_unit_exponent
        lines = _charges(cycle, unit, config, usage, items)
        lines += _interest(cycle, config, dues, exponent, paid)
        lines += _taxes(cycle, config, lines, exponent)
        if config.round_off is not None:
            total = sum(amount for _, _, amount, _ in lines)
            step = config.round_off.to_minor
            rounded = _round(Decimal(total) / step, 0, config.round_off.rounding) * step
            if rounded != total:
                lines.append((config.round_off.head, LineKind.ROUNDING, rounded - total, ""))
        for head in dict.fromkeys(item.head for item in dues):
            owed = sum(item.amount_minor for item in dues if item.head == head)
            if owed:
                lines.append((head, LineKind.ARREARS, owed, ""))
        return lines


def _round(value: Decimal, exponent: int, rule: str) -> int:
    """`value` (major units) in minor units, rounded by `rule`."""
    return int(value.scaleb(exponent).quantize(Decimal(1), rounding=ROUNDING_RULES[rule]))


def _months(cycle: Cycle) -> int:
    """Whole months from the first day: the first month whose same day is the day after the end."""
    for months in range(1, 13):
        if _same_day_later(cycle.period_start, months) == cycle.period_end + dt.timedelta(days=1):
            return months
    raise AssertionError("not a whole number of months")


def _same_day_later(day: dt.date, months: int) -> dt.date:
    """The same day `months` later (earlier when negative), at most the month's last day."""
    year, month = day.year, day.month
    for _ in range(abs(months)):
        if months > 0:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        else:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _applies(head: Head, unit: Unit, cycle: Cycle) -> bool:
    rule = head.applies
    if rule.tags and not any(tag in unit.tags for tag in rule.tags):
        return False
    if rule.occupancy and unit.occupancy not in rule.occupancy:
        return False
    if rule.active_from and cycle.period_end < rule.active_from:
        return False
    return not (rule.active_until and cycle.period_start > rule.active_until)


def _charges(cycle: Cycle, unit: Unit, config: BillingConfig, usage: Sequence[UsageLine],
             items: Sequence[OneOffItem]) -> list[Line]:
    exponent = config.site.minor_unit_exponent
    months = _months(cycle)
    period = _days(cycle.period_start, cycle.period_end)
    billed = [d for d in period if (unit.billed_from is None or d >= unit.billed_from)
              and (unit.billed_until is None or d <= unit.billed_until)]
    lines: list[Line] = []
    amounts: dict[str, int] = {}
    for head in config.heads.values():
        if head.kind in (HeadKind.METERED, HeadKind.SHARE):
            lines += _usage(head, unit, config, usage)
            continue
        if head.kind is HeadKind.ITEM or not _applies(head, unit, cycle):
            continue
        if head.kind is HeadKind.NON_OCCUPANCY:
            base = sum(amounts.get(name, 0) for name in head.of)
            amount = _round(base * head.rate / HUNDRED, 0, head.rounding)
            if head.amount_max_minor is not None:
                amount = min(amount, head.amount_max_minor * months)
        else:
            days = len(billed) if head.prorate else len(period)
            per_month, per = _per_month(head, unit, exponent)
            amount = _round(per_month * months * days / (per * len(period)), exponent, head.rounding)
        if amount:
            amounts[head.name] = amount
            lines.append((head.name, LineKind.CHARGE, amount, ""))
    for item in items:
        lines.append((item.head, LineKind.CHARGE, item.amount_minor, ""))
    return lines


def _per_month(head: Head, unit: Unit, exponent: int) -> tuple[Decimal, int]:
    """A service head's charge for a whole month in major units, as a
    numerator and a denominator (every division comes last: an inexact
    quotient could turn a tie)."""
    if head.kind is HeadKind.AREA:
        return _area(head, unit) * head.rate, 1
    if head.kind is HeadKind.FIXED:
        return head.rate, 1
    if head.kind is HeadKind.COUNT:
        return dict(unit.counts).get(head.count, 0) * head.rate, 1
    if head.cost_per_area is not None:  # FUND
        cost = _area(head, unit) * head.cost_per_area
    elif unit.construction_cost_minor is None:
        raise RatingError("no construction cost", account=unit.account_id)
    else:
        cost = Decimal(unit.construction_cost_minor).scaleb(-exponent)
    return cost * head.rate, 100 * 12  # percent a year


def _area(head: Head, unit: Unit) -> Decimal:
    if unit.area is None:
        raise RatingError(f"no area for {head.name}", account=unit.account_id)
    return unit.area


def _usage(head: Head, unit: Unit, config: BillingConfig, usage: Sequence[UsageLine]) -> list[Line]:
    sums: dict[object, int] = {}
    for line in usage:
        if head.kind is HeadKind.SHARE and line.share is not None and line.share.group_id in head.groups:
            sums[line.share.group_id] = sums.get(line.share.group_id, 0) + line.amount_minor
        if head.kind is HeadKind.METERED and line.share is None and line.tariff_id in head.tariffs:
            sums[line.meter_id] = sums.get(line.meter_id, 0) + line.amount_minor
    if head.kind is HeadKind.METERED:
        for meter_id, tariff_id in unit.meters:
            if tariff_id in head.tariffs:
                sums.setdefault(meter_id, 0)
    return [(head.name, LineKind.CHARGE, amount, "") for amount in sums.values()]


def _interest(cycle: Cycle, config: BillingConfig, dues: Sequence[DuesItem], exponent: int,
              paid: Sequence[Paid]) -> list[Line]:
    lines: list[Line] = []
    for rule in config.interest:
        late: list[tuple[str, Callable[[dt.date], int], list[dt.date], dt.date]] = []
        keys = {(item.due_date, item.bill_ref) for item in dues} | {(p.due_date, p.bill_ref) for p in paid}
        for due, bill_ref in sorted(keys):
            balance = _balance(rule, due, bill_ref, dues, paid)
            days, start, first_late_now = _charged_days(rule, due, cycle)
            if days and any(balance(day) > 0 for day in days) and (first_late_now or not rule.once):
                late.append((bill_ref, balance, days, start))
        if sum(balance(days[0]) for _, balance, days, _ in late) < rule.minimum_outstanding_minor:
            continue
        for bill_ref, balance, days, start in late:
            amount = _rule_amount(rule, balance, days, start, exponent)
            if amount:
                kind = LineKind.INTEREST if rule.method in (Method.SIMPLE_DAILY, Method.MONTHLY_PERCENT) \
                    else LineKind.LATE_FEE
                lines.append((rule.head, kind, amount, bill_ref))
    return lines


def _balance(rule: InterestRule, due: dt.date, bill_ref: str, dues: Sequence[DuesItem],
             paid: Sequence[Paid]) -> Callable[[dt.date], int]:
    """day -> what the due owed under the rule that day: still owed now, plus
    what payments after that day (and after the due date) paid of it."""
    def bears(head: str, kind: LineKind) -> bool:
        return (not rule.on_heads or head in rule.on_heads) and \
            (rule.on_interest or kind not in (LineKind.INTEREST, LineKind.LATE_FEE))

    owed = sum(item.amount_minor for item in dues if (item.bill_ref, item.due_date) == (bill_ref, due)
               and bears(item.head, item.kind))
    later = [p for p in paid if (p.bill_ref, p.due_date) == (bill_ref, due) and p.on > due and bears(p.head,
                                                                                                     p.kind)]
    return lambda day: owed + sum(p.amount_minor for p in later if p.on > day)


def _charged_days(rule: InterestRule, due: dt.date, cycle: Cycle) -> tuple[list[dt.date], dt.date, bool]:
    """Replays the account's cycles from the one the due fell due in: each
    cycle that sees the due late charges its days not charged before, up to
    its end. Returns the days this cycle charges, the first interest day,
    and whether this cycle is the first to see the due late."""
    months = _months(cycle)
    starts = [cycle.period_start]
    while starts[-1] > due:
        starts.append(_same_day_later(cycle.period_start, -months * len(starts)))
    start = due + dt.timedelta(days=1 if rule.interest_from == "due_date" else rule.grace_days + 1)
    charged: set[dt.date] = set()
    seen_late = False
    for first in reversed(starts):
        last = _same_day_later(first, months) - dt.timedelta(days=1)
        grace = rule.grace_days if rule.grace_for == "all" or due >= first else 0
        if due + dt.timedelta(days=grace + 1) > last:
            continue
        now = [d for d in _days(start, last) if d not in charged]
        charged.update(now)
        if first == cycle.period_start:
            return now, start, not seen_late
        seen_late = True
    return [], start, False


def _rule_amount(rule: InterestRule, balance: Callable[[dt.date], int], days: list[dt.date], start: dt.date,
                 exponent: int) -> int:
    if rule.method is Method.SIMPLE_DAILY:
        total = Decimal(0)
        for day in days:
            years = 0
            while _same_day_later(start - dt.timedelta(days=1), 12 * (years + 1)) < day:
                years += 1
            growth = (1 + rule.rate / HUNDRED) ** years if rule.compounding == "annual" else 1
            total += balance(day) * rule.rate * growth
        amount = _round(total / HUNDRED / 365, 0, rule.rounding)
    elif rule.method is Method.MONTHLY_PERCENT:
        anniversaries = [_same_day_later(start - dt.timedelta(days=1), m) for m in range(1, 400)]
        owed = sum(balance(day) for day in anniversaries if days and days[0] <= day <= days[-1])
        amount = _round(Decimal(owed) * rule.rate / HUNDRED, 0, rule.rounding)
    elif rule.method is Method.PER_DAY:
        amount = rule.amount_minor * sum(1 for day in days if balance(day) > 0)
    else:
        amount = rule.amount_minor if any(balance(day) > 0 for day in days) else 0
    if rule.rate_max is not None:
        owed_days = sum(balance(day) for day in days)
        amount = min(amount, _round(Decimal(owed_days) * rule.rate_max / HUNDRED / 365, 0, rule.rounding))
    if rule.amount_max_minor is not None:
        amount = min(amount, rule.amount_max_minor)
    return max(amount, 0)


def _taxes(cycle: Cycle, config: BillingConfig, lines: list[Line], exponent: int) -> list[Line]:
    taxes: list[Line] = []
    for rule in config.taxes:
        settings = [t for t in rule.turnover or () if t.since <= cycle.bill_date]
        if rule.turnover is not None and not (settings and settings[-1].exceeds):
            continue
        base = _tax_base(rule, lines, _months(cycle))
        if base is None or base <= 0:
            continue
        for part in rule.parts:
            taxes.append((part.name, LineKind.TAX, _round(base * part.rate / HUNDRED, 0, rule.rounding), ""))
    return taxes


def _tax_base(rule: TaxRule, lines: list[Line], months: int) -> Decimal | None:
    taxable = sum(amount for head, kind, amount, _ in lines if head in rule.on_heads
                  and kind in (LineKind.CHARGE, LineKind.INTEREST, LineKind.LATE_FEE))
    if rule.threshold_monthly_minor is None:
        return Decimal(taxable)
    contribution = sum(amount for head, kind, amount, _ in lines
                       if kind is LineKind.CHARGE and head not in rule.pass_through)
    if contribution <= rule.threshold_monthly_minor * months:
        return None
    if rule.excess_only:
        return Decimal(min(taxable, contribution - rule.threshold_monthly_minor * months))
    return Decimal(taxable)
