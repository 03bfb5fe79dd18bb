"""The charge lines of one unit for one cycle: service heads, usage, one-off items.

Fast path: integer minor units, every rate an integer times 10^6, one
rounding per line (the head's rule, half-up unless configured). Rates are
per month; a cycle of n months charges n times the rate. A unit billed for
only some days of the cycle (`Unit.billed_from` / `billed_until`) pays
rate x months x billed days / days of the cycle, rounded once, for every
head with `prorate = true` (the default; area, fixed, count and fund heads).
The Decimal reference of the same rules is rating.billing.reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rating.billing.documents import BillLine, Cycle, LineKind, OneOffItem, Unit, UsageLine
from rating.billing.money import major, round_div
from rating.billing.rules import RATE_SCALE, Applies, BillingConfig, Head, HeadKind
from rating.errors import RatingError
from rating.model.registry import AREA_DECIMALS

AREA_SCALE = 10**AREA_DECIMALS
PERCENT_SCALE = 100 * RATE_SCALE  # a percentage rate_u over this is the fraction
# Enum members looked up once: an attribute of an Enum class costs ~0.3 µs in Python 3.11.
_AREA = HeadKind.AREA
_FIXED = HeadKind.FIXED
_COUNT = HeadKind.COUNT
_FUND = HeadKind.FUND
_METERED = HeadKind.METERED
_SHARE = HeadKind.SHARE
_ITEM = HeadKind.ITEM
_CHARGE = LineKind.CHARGE


@dataclass(frozen=True)
class Span:
    """What a unit's service charges scale by: months of the cycle, billed days of its days."""

    months: int
    billed_days: int
    period_days: int


def applies(rule: Applies, unit: Unit, cycle: Cycle) -> bool:
    """A head or rule applies to a unit in a cycle: tags, occupancy, active dates."""
    if rule.everywhere:
        return True
    if rule.tags and not rule.tags & unit.tags:
        return False
    if rule.occupancy and unit.occupancy not in rule.occupancy:
        return False
    if rule.active_from is not None and cycle.period_end < rule.active_from:
        return False
    return rule.active_until is None or cycle.period_start <= rule.active_until


def charge_lines(config: BillingConfig, unit: Unit, cycle: Cycle, span: Span,
                 usage: Iterable[UsageLine], items: Iterable[OneOffItem]) -> tuple[list[BillLine], list[str]]:
    """The unit's CHARGE lines in the order of the heads, and the anomalies."""
    by_head, anomalies = _usage_by_head(config, unit, usage)
    lines: list[BillLine] = []
    amounts: dict[str, int] = {}
    area_u: int | None = None
    area_text = ""
    for head in config.heads.values():
        kind = head.kind
        if kind is _METERED or kind is _SHARE:
            lines.extend(by_head.get(head.name, ()))
            continue
        if kind is _ITEM or not applies(head.applies, unit, cycle):
            continue
        if area_u is None and (kind is _AREA or head.cost_per_area_u is not None):
            area_u, area_text = area_units(head, config, unit), str(unit.area)
        amount, basis = _service_amount(head, config, unit, span, amounts, area_u or 0, area_text)
        if amount:
            amounts[head.name] = amount
            if span.billed_days != span.period_days and head.prorate:
                basis += (("days", f"{span.billed_days} of {span.period_days}"),)
            if span.months != 1:
                basis += (("months", str(span.months)),)
            lines.append(BillLine(head.name, _CHARGE, amount, head.title, basis + head.basis))
    lines.extend(_item_line(config, unit, item) for item in items)
    return lines, anomalies


def _service_amount(head: Head, config: BillingConfig, unit: Unit, span: Span, amounts: dict[str, int],
                    area_u: int, area_text: str) -> tuple[int, tuple[tuple[str, str], ...]]:
    """A service head's amount (one rounding) and what it was computed on."""
    scale = 10 ** config.site.minor_unit_exponent
    months, period = span.months, span.period_days
    days = span.billed_days if head.prorate else period
    kind = head.kind
    if kind is _AREA:
        amount = round_div(area_u * head.rate_u * scale * months * days, AREA_SCALE * RATE_SCALE * period,
                           head.rounding)
        return amount, (("area", f"{area_text} {head.area_unit}"),)
    if kind is _FIXED:
        return round_div(head.rate_u * scale * months * days, RATE_SCALE * period, head.rounding), ()
    if kind is _COUNT:
        count = dict(unit.counts).get(head.count, 0)
        amount = round_div(count * head.rate_u * scale * months * days, RATE_SCALE * period, head.rounding)
        return amount, (("count", f"{count} {head.count}"),)
    if kind is _FUND:
        if head.cost_per_area_u is not None:
            cost_num, cost_den = area_u * head.cost_per_area_u * scale, AREA_SCALE * RATE_SCALE
            shown = f"{area_text} {head.area_unit} x {head.cost_per_area}"
        else:
            cost_num, cost_den = construction_cost(head, config, unit), 1
            shown = major(cost_num, config.site.minor_unit_exponent)
        amount = round_div(cost_num * head.rate_u * months * days, cost_den * PERCENT_SCALE * 12 * period,
                           head.rounding)
        return amount, (("construction cost", shown),)
    base = sum(amounts.get(name, 0) for name in head.of)  # NON_OCCUPANCY
    amount = round_div(base * head.rate_u, PERCENT_SCALE, head.rounding)
    if head.amount_max_minor is not None:
        amount = min(amount, head.amount_max_minor * months)
    return amount, (("base", f"{major(base, config.site.minor_unit_exponent)} ({', '.join(head.of)})"),)


def area_units(head: Head, config: BillingConfig, unit: Unit) -> int:
    """The unit's area times 10^6; a unit without one cannot be charged per area."""
    if unit.area is None:
        raise RatingError(f"account {unit.account_id!r} has no area, but head {head.name!r} charges per area",
                          where=head.where, reason="MISSING_AREA", file=config.path, key=f"heads.{head.name}",
                          account=unit.account_id)
    scaled = unit.area.scaleb(AREA_DECIMALS)  # exact: the registry keeps areas to 10^-6
    units = int(scaled) if scaled.is_finite() and scaled == scaled.to_integral_value() else None
    if units is None or units < 0:
        raise RatingError(f"account {unit.account_id!r} has area {unit.area}, not a non-negative number "
                          f"of at most {AREA_DECIMALS} decimals", where=head.where, account=unit.account_id)
    return units


def construction_cost(head: Head, config: BillingConfig, unit: Unit) -> int:
    """The unit's own construction cost (minor units), for a fund head without cost_per_area."""
    if unit.construction_cost_minor is None:
        raise RatingError(f"account {unit.account_id!r} has no construction cost, and head {head.name!r} "
                          "has no cost_per_area", where=head.where, reason="MISSING_COST", file=config.path,
                          key=f"heads.{head.name}", account=unit.account_id)
    return unit.construction_cost_minor


def _usage_by_head(config: BillingConfig, unit: Unit,
                   usage: Iterable[UsageLine]) -> tuple[dict[str, list[BillLine]], list[str]]:
    """Metered lines per (head, meter) and share lines per (head, group); a
    meter of the unit that sent nothing is billed zero, with an anomaly.
    The usage lines themselves (slabs, readings) are the bill's detail."""
    totals: dict[tuple[str, str, object], list] = {}
    for line in usage:
        if line.share is not None:
            head = config.head_of_group.get(line.share.group_id)
            key: tuple[str, str, object] = (head.name if head else "", "group", line.share.group_id)
        elif line.tariff_id in config.unbilled_tariffs:
            continue
        else:
            head = config.head_of_tariff.get(line.tariff_id)
            key = (head.name if head else "", "meter", line.meter_id)
        if head is None:
            raise _unbilled(config, unit, line)
        total = totals.get(key)
        if total is None:
            totals[key] = [line.amount_minor, line.tariff_id]
        else:
            total[0] += line.amount_minor
    anomalies = []
    for meter_id, tariff_id in unit.meters:
        head = config.head_of_tariff.get(tariff_id)
        if head is not None and (head.name, "meter", meter_id) not in totals:
            totals[(head.name, "meter", meter_id)] = [0, tariff_id]
            anomalies.append(f"meter {meter_id} ({tariff_id}): no readings in the cycle; "
                             f"{head.name} billed at zero")
    by_head: dict[str, list[BillLine]] = {}
    for (name, what, ident), (amount, tariff_id) in totals.items():
        basis = ((what, str(ident)), ("tariff", tariff_id))
        by_head.setdefault(name, []).append(BillLine(name, _CHARGE, amount, config.heads[name].title, basis))
    return by_head, anomalies


def _unbilled(config: BillingConfig, unit: Unit, line: UsageLine) -> RatingError:
    if line.share is not None:
        what, key = f"shared-area group {line.share.group_id!r}", "a share head's groups"
    else:
        what, key = f"tariff {line.tariff_id!r} (meter {line.meter_id})", \
            "a metered head's tariffs, [billing].prepaid_tariffs or rated_only_tariffs"
    return RatingError(f"account {unit.account_id!r} has usage of {what} that no head bills; add it to {key}",
                       where=f"{config.path}[heads]", reason="UNBILLED_USAGE", file=config.path,
                       account=unit.account_id)


def _item_line(config: BillingConfig, unit: Unit, item: OneOffItem) -> BillLine:
    head = config.heads.get(item.head)
    if head is None or head.kind is not _ITEM:
        raise RatingError(f"one-off item of account {unit.account_id!r} names head {item.head!r}, which is "
                          f"not an item head (kind = \"item\") of {config.path}",
                          where=f"{config.path}[heads]", reason="UNKNOWN_HEAD", file=config.path,
                          account=unit.account_id)
    return BillLine(head.name, _CHARGE, item.amount_minor, item.description or head.title,
                    (("item", item.description),))
