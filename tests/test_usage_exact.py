"""Instalments and facility prices equal their plain definitions exactly:
the largest-remainder schedule (all accounts through the kernel at once)
against divmod, and a use's integer price against Decimal arithmetic."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from rating.model.site import Site
from rating.usage.facilities import use_amount_minor
from rating.usage.instalments import Plan, add_months, schedule, schedule_reference
from rating.usage.settings import Facility


@given(st.lists(st.tuples(st.integers(1, 10**14), st.integers(1, 120)), min_size=1, max_size=12))
def test_a_schedule_is_the_divmod_split_and_sums_to_each_amount(plans):
    built = [Plan(f"p{i}", "fund", "t", count, dt.date(2026, 1, 31), 1, "w", None,
                  {"A": amount, "B": amount // 7 + 1}) for i, (amount, count) in enumerate(plans)]
    table = schedule(built).to_pylist()
    expected = [share for plan in built for account in ("A", "B")
                for share in schedule_reference(plan.amounts_minor[account], plan.count)]
    assert [r["amount_minor"] for r in table] == expected
    for plan in built:
        for account, amount in plan.amounts_minor.items():
            assert sum(r["amount_minor"] for r in table if r["plan"] == plan.plan_id
                       and r["account_id"] == account) == amount


@given(st.dates(dt.date(2000, 1, 1), dt.date(2090, 12, 31)), st.integers(0, 240))
def test_a_due_date_keeps_its_day_or_falls_on_the_last_of_a_shorter_month(day, months):
    moved = add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day == day.day or (moved.day < day.day and (moved + dt.timedelta(days=1)).day == 1)


@given(st.integers(1, 10**12 - 1), st.integers(1, 10**9 - 1), st.integers(0, 4),
       st.sampled_from(["half_even", "half_up"]))
def test_a_use_costs_price_times_quantity_rounded_once(price_u, quantity_milli, exponent, rounding):
    price = Decimal(price_u).scaleb(-6)
    facility = Facility("ev", price, "kwh", "facilities", "EV")
    site = Site(minor_unit_exponent=exponent, rounding=rounding)
    exact = price * Decimal(quantity_milli).scaleb(-3)
    mode = ROUND_HALF_EVEN if rounding == "half_even" else ROUND_HALF_UP
    expected = exact.quantize(Decimal(1).scaleb(-exponent), rounding=mode).scaleb(exponent)
    assert use_amount_minor(facility, quantity_milli, site) == int(expected)
