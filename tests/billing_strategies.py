"""Hypothesis strategies for bills: a billing file's tables, a unit, its
cycle, usage and open dues, aimed at the edges (ties at the minor unit,
part periods, grace ending on a cycle's first day, leap years, caps)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import strategies as st

from rating.billing.config import billing_from_mapping
from rating.billing.cycles import add_months
from rating.billing.documents import (
    Cycle,
    DuesItem,
    LineKind,
    Occupancy,
    OneOffItem,
    SharePart,
    Unit,
    UsageLine,
)
from rating.billing.rules import BillingConfig
from rating.site import Site
from tests.strategies import decimals

SITE = Site(name="Test CHS", currency="INR", rounding="half_up")
CHARGE_HEADS = ("maintenance", "sinking_fund", "repair_fund", "parking", "non_occupancy", "electricity",
                "water", "lift", "event_fee")
METERS = (("E-1", "ELEC"), ("W-1", "WATER"))


@dataclass(frozen=True)
class BillCase:
    config: BillingConfig
    cycle: Cycle
    unit: Unit
    usage: tuple[UsageLine, ...]
    dues: tuple[DuesItem, ...]
    items: tuple[OneOffItem, ...]


rounding = st.sampled_from(["half_up", "half_even"])


@st.composite
def heads(draw) -> dict:
    fund: dict = {"kind": "fund", "rate": draw(decimals(5, 3))}
    if draw(st.booleans()):
        fund["cost_per_area"] = draw(decimals(50000, 2))
    parking: dict = {"kind": "count", "count": "parking_slots", "rate": draw(decimals(2000, 2))}
    if draw(st.booleans()):
        parking["tags"] = ["parking"]
    non_occupancy: dict = {"kind": "non_occupancy", "rate": draw(decimals(10, 2)),
                           "of": draw(st.sampled_from([["maintenance"], ["maintenance", "repair_fund"]]))}
    if draw(st.booleans()):
        non_occupancy["amount_max"] = draw(decimals(2000, 2))
    return {
        "maintenance": {"kind": "area", "rate": draw(decimals(100, 3)), "rounding": draw(rounding),
                        "prorate": draw(st.booleans())},
        "sinking_fund": fund,
        "repair_fund": {"kind": "fixed", "rate": draw(decimals(1000, 2)), "prorate": draw(st.booleans())},
        "parking": parking,
        "non_occupancy": non_occupancy,
        "electricity": {"kind": "metered", "tariffs": ["ELEC"]},
        "water": {"kind": "metered", "tariffs": ["WATER"]},
        "lift": {"kind": "share", "groups": ["lift-A"]},
        "event_fee": {"kind": "item"},
    }


@st.composite
def interest_rule(draw, index: int) -> dict:
    method = draw(st.sampled_from(["simple_daily", "monthly_percent", "flat", "per_day"]))
    rule: dict = {"method": method, "head": "interest" if method in ("simple_daily", "monthly_percent")
                  else f"late_fee_{index}", "rounding": draw(rounding),
                  "grace_days": draw(st.integers(0, 40)),
                  "grace_for": draw(st.sampled_from(["all", "current"])),
                  "interest_from": draw(st.sampled_from(["due_date", "grace_end"])),
                  "on_interest": draw(st.booleans())}
    if method in ("simple_daily", "monthly_percent"):
        rule["rate"] = draw(decimals(30, 3))
    else:
        rule["amount"] = draw(decimals(500, 2))
    if method == "simple_daily":
        rule["compounding"] = draw(st.sampled_from(["none", "annual"]))
    if method == "flat":
        rule["once"] = draw(st.booleans())
    for key, value in (("minimum_outstanding", decimals(5000, 2)), ("amount_max", decimals(1000, 2)),
                       ("rate_max", decimals(40, 2))):
        if draw(st.integers(0, 3)) == 0:
            rule[key] = draw(value)
    if draw(st.booleans()):
        rule["on"] = draw(st.sampled_from([["maintenance"], ["maintenance", "water"]]))
    return rule


@st.composite
def taxes(draw) -> dict:
    if draw(st.booleans()):
        return {"vat": {"rate": draw(decimals(20, 3)), "on": ["maintenance", "parking"],
                        "rounding": draw(rounding)}}
    gst: dict = {"parts": [{"name": "cgst", "rate": 9}, {"name": "sgst", "rate": 9}],
                 "on": ["maintenance", "sinking_fund", "repair_fund", "parking", "non_occupancy", "interest"],
                 "pass_through": ["electricity", "water"],
                 "threshold_monthly": draw(st.sampled_from([Decimal(0), Decimal(7500), Decimal(3000)])),
                 "taxed": draw(st.sampled_from(["whole", "excess"]))}
    if draw(st.booleans()):
        gst["turnover"] = [{"since": dt.date(2024, 4, 1), "exceeds": True},
                           {"since": dt.date(2025, 6, 1), "exceeds": draw(st.booleans())}]
    return {"gst": gst}


@st.composite
def billing_configs(draw) -> BillingConfig:
    doc: dict = {"billing": {"rounding": draw(rounding)}, "heads": draw(heads())}
    rules = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True))
    doc["interest"] = {f"rule_{i}": draw(interest_rule(i)) for i in rules}
    if draw(st.booleans()):
        doc["taxes"] = draw(taxes())
        if "gst" in doc["taxes"] and not any(r["head"] == "interest" for r in doc["interest"].values()):
            doc["taxes"]["gst"]["on"].remove("interest")
    if draw(st.booleans()):
        doc["round_off"] = {"to": draw(st.sampled_from([Decimal(1), Decimal("0.10"), Decimal("0.50")])),
                            "rounding": draw(rounding)}
    return billing_from_mapping(doc, where="billing.toml", site=SITE)


@st.composite
def cycles(draw) -> Cycle:
    anchor = draw(st.sampled_from([1, 1, 5, 28]))
    months = draw(st.sampled_from([1, 1, 3]))
    start = dt.date(draw(st.integers(2023, 2026)), draw(st.integers(1, 12)), anchor)
    end = add_months(start, months) - dt.timedelta(days=1)
    bill = end + dt.timedelta(days=1)
    return Cycle("test", start, end, bill, bill + dt.timedelta(days=15))


@st.composite
def units(draw, cycle: Cycle) -> Unit:
    days = (cycle.period_end - cycle.period_start).days
    billed_from = billed_until = None
    if draw(st.booleans()):
        billed_from = cycle.period_start + dt.timedelta(days=draw(st.integers(-5, days)))
    if draw(st.booleans()):
        billed_until = cycle.period_start + dt.timedelta(days=draw(st.integers(days // 2, days + 5)))
    return Unit(
        "A-1", owner="Owner", area=draw(decimals(300, 6, minimum=1)),
        occupancy=draw(st.sampled_from(list(Occupancy))),
        tags=frozenset(draw(st.sets(st.sampled_from(["parking", "club"])))),
        billed_from=billed_from, billed_until=billed_until,
        meters=METERS[: draw(st.integers(0, 2))],
        counts=(("parking_slots", draw(st.integers(0, 3))),),
        construction_cost_minor=draw(st.integers(0, 10**10)),
    )


@st.composite
def usage_lines(draw, cycle: Cycle) -> tuple[UsageLine, ...]:
    lines = []
    for meter_id, tariff in draw(st.lists(st.sampled_from(METERS), max_size=3)):
        lines.append(UsageLine(meter_id, tariff, draw(st.sampled_from(["energy", "fixed_charge"])),
                               cycle.period_start, cycle.period_end, Decimal(1), draw(st.integers(0, 10**6))))
    if draw(st.booleans()):
        share = SharePart("lift-A", "area", Decimal(1), Decimal(10))
        lines.append(UsageLine(None, "COMMON", "shared_area", cycle.period_start, cycle.period_end,
                               Decimal(1), draw(st.integers(0, 10**5)), share=share))
    return tuple(lines)


@st.composite
def dues_items(draw, cycle: Cycle) -> tuple[DuesItem, ...]:
    items = []
    for _ in range(draw(st.integers(0, 6))):
        head = draw(st.sampled_from(["maintenance", "maintenance", "water", "interest", "late_fee_2"]))
        kind = LineKind.INTEREST if head == "interest" else \
            LineKind.LATE_FEE if head.startswith("late") else LineKind.CHARGE
        due = draw(st.one_of(  # near the cycle's start, long ago, or whole months before its end
            st.integers(-60, 20).map(lambda n: cycle.period_start + dt.timedelta(days=n)),
            st.integers(-800, -300).map(lambda n: cycle.period_start + dt.timedelta(days=n)),
            st.integers(1, 30).map(lambda n: add_months(cycle.period_end, -n))))
        items.append(DuesItem(head, kind, draw(st.integers(-10**5, 10**7)), due,
                              draw(st.sampled_from(["B/1", "B/2", "IMPORT-3"]))))
    return tuple(items)


@st.composite
def bill_cases(draw) -> BillCase:
    config = draw(billing_configs())
    cycle = draw(cycles())
    items = tuple(OneOffItem("event_fee", draw(st.integers(1, 10**6)), "event")
                  for _ in range(draw(st.integers(0, 1))))
    return BillCase(config, cycle, draw(units(cycle)), draw(usage_lines(cycle)), draw(dues_items(cycle)),
                    items)
