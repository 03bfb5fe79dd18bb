"""draft_bill: every unit billed, readings or not; bad input names file, key and
account and computes nothing; the interest windows at their edges; which
accounts a run covers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from rating import load_config
from rating.billing.compute import check_accounts, draft_bill
from rating.billing.config import billing_from_mapping
from rating.billing.cycles import accounts_in_run, cycle_months
from rating.billing.documents import Cycle, DuesItem, LineKind, OneOffItem, Unit, UsageLine
from rating.billing.interest import Segment, Window, accrue
from rating.cli.demo import generate_demo
from rating.engine import rate
from rating.errors import ConfigError, RatingError
from rating.inputs.tables import read_table
from rating.inputs.textfile import parse_toml
from rating.model.site import Cycle as BillingCycle
from rating.model.site import Site

SITE = Site(name="Test CHS", currency="INR", rounding="half_up")
MAY = Cycle("T", dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
JUNE = Cycle("T", dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 15))
FLAT = Unit("A-101", owner="Asha Patil", area=Decimal("70.00"), meters=(("E-1", "ELEC"), ("W-1", "WATER")))
HEADS = """
[heads.maintenance]
kind = "area"
rate = 38
[heads.electricity]
kind = "metered"
tariffs = ["ELEC"]
[heads.water]
kind = "metered"
tariffs = ["WATER"]
[heads.event_fee]
kind = "item"
"""


def rules(text: str = HEADS):
    return billing_from_mapping(parse_toml(text, where="billing.toml", error=ConfigError),
                                where="billing.toml", site=SITE)


def amounts(bill) -> list[tuple[str, int]]:
    return [(line.head, line.amount_minor) for line in bill.lines]


def test_a_unit_whose_meters_sent_nothing_still_owes_maintenance_and_shows_an_anomaly():
    bill = draft_bill(MAY, FLAT, rules())
    assert amounts(bill) == [("maintenance", 266000), ("electricity", 0), ("water", 0)]
    assert bill.anomalies == ("meter E-1 (ELEC): no readings in the cycle; electricity billed at zero",
                              "meter W-1 (WATER): no readings in the cycle; water billed at zero")


def test_rated_usage_is_billed_per_meter_and_a_prepaid_tariff_is_left_out():
    usage = [UsageLine("E-1", "ELEC", "energy", MAY.period_start, MAY.period_end, Decimal(120), 98050),
             UsageLine("E-1", "ELEC", "fixed_charge", MAY.period_start, MAY.period_end, Decimal(1), 13000),
             UsageLine(None, "MAINT", "area_charge", MAY.period_start, MAY.period_end, Decimal(70), 266000)]
    config = rules(HEADS + '[billing]\nprepaid_tariffs = ["MAINT"]\n')
    bill = draft_bill(MAY, FLAT, config, usage)
    assert amounts(bill) == [("maintenance", 266000), ("electricity", 111050), ("water", 0)]
    assert bill.anomalies == ("meter W-1 (WATER): no readings in the cycle; water billed at zero",)
    assert bill == draft_bill(MAY, FLAT, config, usage)  # a draft is pure: the same inputs, the same draft


def test_usage_that_no_head_bills_is_an_error_naming_the_file_and_account():
    usage = [UsageLine("G-1", "GAS", "energy", MAY.period_start, MAY.period_end, Decimal(1), 100)]
    with pytest.raises(RatingError) as caught:
        draft_bill(MAY, FLAT, rules(), usage)
    assert "tariff 'GAS'" in caught.value.message and caught.value.where == "billing.toml[heads]"
    assert caught.value.details["account"] == "A-101"


def test_an_account_without_area_is_an_error_naming_file_key_and_account_before_any_bill():
    no_area = Unit("B-202")
    with pytest.raises(RatingError) as caught:
        check_accounts(rules(), [(FLAT, MAY), (no_area, MAY)])
    error = caught.value
    assert error.where == "billing.toml[heads.maintenance]" and error.reason == "MISSING_AREA"
    assert error.details == {"file": "billing.toml", "key": "heads.maintenance", "account": "B-202"}
    with pytest.raises(RatingError, match="'B-202' has no area"):
        draft_bill(MAY, no_area, rules())


def test_a_fund_on_the_units_own_construction_cost_needs_one():
    config = rules('[heads.sinking_fund]\nkind = "fund"\nrate = 0.25\n')
    assert amounts(draft_bill(MAY, Unit("C-1", construction_cost_minor=480_000_000), config)) == \
        [("sinking_fund", 100000)]  # 48,00,000.00 x 0.25 % / 12 = 1,000.00
    with pytest.raises(RatingError, match="no construction cost") as caught:
        check_accounts(config, [(Unit("C-2"), MAY)])
    assert caught.value.details["key"] == "heads.sinking_fund"


def test_a_one_off_item_must_name_an_item_head():
    bill = draft_bill(MAY, FLAT, rules(), items=[OneOffItem("event_fee", 50000, "Diwali mela")])
    assert ("event_fee", 50000) in amounts(bill)
    with pytest.raises(RatingError, match="names head 'club'"):
        draft_bill(MAY, FLAT, rules(), items=[OneOffItem("club", 100, "club")])
    with pytest.raises(RatingError, match="names head 'maintenance'"):
        draft_bill(MAY, FLAT, rules(), items=[OneOffItem("maintenance", 100, "again")])


INTEREST = HEADS + """
[interest.interest]
method = "simple_daily"
rate = 21
grace_days = 15
"""


def test_a_due_that_falls_late_on_the_cycles_first_day_bears_interest_back_to_its_due_date():
    due = [DuesItem("maintenance", LineKind.CHARGE, 600000, dt.date(2025, 4, 15), "T/1")]
    line = next(li for li in draft_bill(MAY, FLAT, rules(INTEREST), (), due).lines if li.head == "interest")
    assert line.amount_minor == 15879  # 6,000.00 x 21 % x 46 / 365 (16 April to 31 May) = 158.79
    assert dict(line.basis)["from"] == "2025-04-16" and line.ref == "T/1"
    june = draft_bill(JUNE, FLAT, rules(INTEREST), (), due)
    next_month = [li for li in june.lines if li.head == "interest"]
    assert next_month[0].amount_minor == 10356  # June alone: 6,000.00 x 21 % x 30 / 365 = 103.56


def test_a_due_still_in_grace_at_the_cycles_end_bears_nothing_yet():
    due = [DuesItem("maintenance", LineKind.CHARGE, 600000, dt.date(2025, 5, 20), "T/1")]
    assert [li for li in draft_bill(MAY, FLAT, rules(INTEREST), (), due).lines if li.head == "interest"] == []


def test_annual_compounding_turns_on_the_anniversary_of_the_first_interest_day():
    text = '[interest.i]\nmethod = "simple_daily"\nrate = 10\ncompounding = "annual"\n'
    rule = rules(HEADS + text).interest[0]
    window = Window(dt.date(2024, 6, 15), JUNE.period_start, JUNE.period_end, False)
    # 1-15 June 2025 in the first year, 16-30 June in the second: 1,500.00 + 1,650.00
    assert accrue(rule, [Segment(dt.date(2024, 6, 16), 365000_00)], window) == 3150_00


def test_a_monthly_percentage_counts_the_whole_months_completed_in_the_cycle():
    rule = rules(HEADS + '[interest.i]\nmethod = "monthly_percent"\nrate = 2\n').interest[0]
    window = Window(dt.date(2025, 3, 31), MAY.period_start, MAY.period_end, False)
    assert accrue(rule, [Segment(dt.date(2025, 4, 1), 500000)], window) == 10000  # 31 May: month two


def test_interest_accrues_on_a_declining_balance_given_as_segments():
    rule = rules(HEADS + '[interest.i]\nmethod = "simple_daily"\nrate = 18\n').interest[0]
    window = Window(dt.date(2025, 5, 31), JUNE.period_start, JUNE.period_end, False)
    paid_down = [Segment(dt.date(2025, 6, 1), 1_000_000), Segment(dt.date(2025, 6, 11), 400_000)]
    # (10,000.00 x 10 days + 4,000.00 x 20 days) x 18 % / 365 = 88.767... -> 88.77
    assert accrue(rule, paid_down, window) == 8877


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_a_quarterly_cycle_charges_three_months_and_scales_the_gst_threshold():
    text = HEADS + """
[taxes.gst]
parts = [{ name = "cgst", rate = 9 }, { name = "sgst", rate = 9 }]
on = ["maintenance"]
threshold_monthly = 2000
"""
    quarter = Cycle("T", day("2025-04-01"), day("2025-06-30"), day("2025-07-01"), day("2025-07-15"))
    # 1,900.00 a month: 5,700.00 a quarter is not over 3 x 2,000.00
    small = draft_bill(quarter, Unit("Q-1", area=Decimal(50)), rules(text))
    assert amounts(small) == [("maintenance", 570000)]
    # 2,280.00 a month: 6,840.00 a quarter is, and is taxed whole: 9 % = 615.60 each
    bill = draft_bill(quarter, Unit("Q-2", area=Decimal(60)), rules(text))
    assert amounts(bill) == [("maintenance", 684000), ("cgst", 61560), ("sgst", 61560)]


def test_a_cycle_must_be_whole_months():
    odd = Cycle("T", dt.date(2025, 5, 1), dt.date(2025, 5, 20), dt.date(2025, 5, 21), dt.date(2025, 6, 5))
    with pytest.raises(ConfigError, match="not a whole number of months"):
        cycle_months(odd)


def test_a_run_covers_the_accounts_whose_own_period_ends_in_it():
    units = [Unit("monthly"), Unit("anchor", billing_cycle=BillingCycle(5)),
             Unit("quarterly", billing_cycle=BillingCycle(1, 3)),
             Unit("moved-out", billed_until=dt.date(2025, 4, 30)),
             Unit("moves-in", billed_from=dt.date(2025, 5, 20))]
    covered = {u.account_id: (c.period_start, c.period_end) for u, c in
               accounts_in_run(MAY, units, BillingCycle())}
    assert covered == {"monthly": (dt.date(2025, 5, 1), dt.date(2025, 5, 31)),
                       "anchor": (dt.date(2025, 4, 5), dt.date(2025, 5, 4)),
                       "moves-in": (dt.date(2025, 5, 1), dt.date(2025, 5, 31))}
    in_june = {u.account_id for u, _ in accounts_in_run(JUNE, units, BillingCycle())}
    assert in_june == {"monthly", "anchor", "quarterly", "moves-in"}
    two_months = Cycle("T", day("2025-05-01"), day("2025-06-30"), day("2025-07-01"), day("2025-07-15"))
    with pytest.raises(ConfigError, match="holds 2 periods"):
        accounts_in_run(two_months, units, BillingCycle())


def test_interest_lines_come_oldest_due_first_whatever_the_order_of_the_dues():
    dues = [DuesItem("interest", LineKind.INTEREST, 500, day("2025-03-07"), "T/2"),
            DuesItem("maintenance", LineKind.CHARGE, 100000, day("2025-04-01"), "T/1"),
            DuesItem("maintenance", LineKind.CHARGE, 100000, day("2025-03-07"), "T/2")]
    bill = draft_bill(MAY, FLAT, rules(INTEREST), (), dues)
    lines = [li for li in bill.lines if li.kind is LineKind.INTEREST]
    assert [li.ref for li in lines] == ["T/2", "T/1"]


def test_a_quarterly_account_in_the_registry_is_rated_month_by_month(tmp_path):
    society = generate_demo(tmp_path, towers=1, floors=1, flats_per_floor=2)
    accounts = (tmp_path / "accounts.csv").read_text(encoding="utf-8")
    (tmp_path / "accounts.csv").write_text(accounts.replace("calendar_month", "quarterly:anchor:5"),
                                           encoding="utf-8")
    config = load_config(society.site_file)
    assert {str(a.cycle) for a in config.registry.accounts.values()} == {"quarterly:anchor:5"}
    charges = rate(read_table(society.readings_file), config=config, now=dt.datetime(2025, 7, 1)).charges
    starts = set(charges["period_start"].to_pylist())
    assert starts == {dt.date(2025, 4, 5), dt.date(2025, 5, 5)}  # May's readings: two monthly periods
