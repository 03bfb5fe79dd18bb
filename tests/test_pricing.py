"""Exact pricing: hand-computed charges of known and published tariffs, every
component and TOU mode, rounding ties, line order, errors, and the exact path
past int64."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rating.config.tariff_file import load_tariffs, tariffs_from_toml
from rating.consumption.quantities import PeriodQuantities
from rating.errors import AmountOverflowError, TariffError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.pricing.pricer import price_periods
from rating.schema import charges_schema

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tariffs"
EPOCH = dt.date(1970, 1, 1)
JAN = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))  # 31 days
APR = (dt.date(2026, 4, 1), dt.date(2026, 5, 1))  # 30 days
SITE = Site()
ALL_DAY = 'schedules = [{ spans = { a = ["00:00-12:00"], b = ["12:00-24:00"] } }]\n'


def toml(body: str, tariff_id: str = "T", effective_from: str = "2025-01-01") -> str:
    return f'[[tariff]]\nid = "{tariff_id}"\neffective_from = {effective_from}\n{body}'


def days(day: dt.date) -> int:
    return (day - EPOCH).days


def price(tariffs, *quantities, site=SITE, period=JAN, area="0", account_tariff=None):
    """Lines of one meter M (account A; tariff T, or the file's only tariff)
    with each given TOU quantity vector (in units, as text) as one billing period."""
    if isinstance(tariffs, str):
        tariffs = tariffs_from_toml(tariffs, where="t.toml")
    tariff_id = "T" if "T" in tariffs else next(iter(tariffs))
    registry = Registry([Meter("M", "A", tariff_id)],
                        [Account("A", area=Decimal(area), tariff_id=account_tariff)])
    scale = Decimal(10) ** site.quantity_decimals
    rows = [row if isinstance(row, tuple) else (row,) for row in quantities]
    qty = [[int(Decimal(q) * scale) for q in row] for row in rows]
    width = max(len(row) for row in qty)
    periods = PeriodQuantities(
        meter_index=np.zeros(len(qty), dtype=np.int32),
        period_start=np.full(len(qty), days(period[0]), dtype=np.int32),
        period_end=np.full(len(qty), days(period[1]), dtype=np.int32),
        qty=np.array([row + [0] * (width - len(row)) for row in qty], dtype=np.int64),
    )
    table = price_periods(periods, registry=registry, tariffs=tariffs, site=site)
    assert table.schema == charges_schema(site, pa.string())
    return table.to_pylist()


def summary(lines) -> list[tuple]:
    """(component, tou_period, slab, quantity, unit_price, amount) as text."""
    def text(value):
        return None if value is None else str(value)
    return [(ln["component"], ln["tou_period"], ln["slab"], text(ln["quantity"]), text(ln["unit_price"]),
             str(ln["amount"])) for ln in lines]


def total(lines) -> Decimal:
    return sum((ln["amount"] for ln in lines), Decimal(0))


# -- the known cases of the project's issue --------------------------------------------

WIDTHS = ("slabs = [{ width = 10, price = 1.5 }, { width = 100, price = 1.0 }, "
          "{ width = 1000, price = 0.5 }, { price = 0.25 }]\n")


def test_widths_graduated_111_units_is_115_50():
    lines = price(toml(f'[tariff.energy]\nmode = "graduated"\n{WIDTHS}'), "111")
    assert summary(lines) == [
        ("energy", None, 1, "10.000", "1.500000", "15.00"),
        ("energy", None, 2, "100.000", "1.000000", "100.00"),
        ("energy", None, 3, "1.000", "0.500000", "0.50"),
    ]
    assert total(lines) == Decimal("115.50")


def test_widths_volume_111_units_is_55_50():
    lines = price(toml(f'[tariff.energy]\nmode = "volume"\n{WIDTHS}'), "111")
    assert summary(lines) == [("energy", None, 3, "111.000", "0.500000", "55.50")]


FIVE_TEN_FIFTEEN = toml("[tariff.energy]\nslabs = [{ upto = 10, price = 5 }, { upto = 20, price = 10 }, "
                        "{ price = 15 }]\n")


@pytest.mark.parametrize("qty, expected", [("25", "225.00"), ("10", "50.00"), ("20", "150.00"), ("0", "0")])
def test_slabs_5_10_15(qty, expected):
    assert total(price(FIVE_TEN_FIFTEEN, qty)) == Decimal(expected)


def test_a_bound_belongs_to_its_own_slab_in_volume_mode():
    text = toml('[tariff.energy]\nmode = "volume"\nslabs = [{ upto = 10, price = 5 }, { price = 15 }]\n')
    assert summary(price(text, "10")) == [("energy", None, 1, "10.000", "5.000000", "50.00")]
    assert summary(price(text, "10.001")) == [("energy", None, 2, "10.001", "15.000000", "150.02")]


# -- published tariffs (examples/tariffs) -------------------------------------------------


def test_ceylon_ibt_30_day_period_150_kwh():
    # Blocks for 30 days: 60, 90, 180. 60 × 16 + 30 × 16 + 60 × 50, and the fixed
    # charge of block 3 (91-180 kWh): 960.
    lines = price(load_tariffs(EXAMPLES / "lk_ceb_domestic.toml"), "150", period=APR)
    assert summary(lines) == [
        ("energy", None, 1, "60.000", "16.000000", "960.00"),
        ("energy", None, 2, "30.000", "16.000000", "480.00"),
        ("energy", None, 3, "60.000", "50.000000", "3000.00"),
        ("slab_fee", None, 3, None, None, "960.00"),
    ]


def test_ceylon_ibt_blocks_prorate_to_a_31_day_period():
    # Blocks for 31 days: 62, 93, 186: 62 × 16 + 31 × 16 + 93 × 50 + 24 × 75, fixed 1500.
    lines = price(load_tariffs(EXAMPLES / "lk_ceb_domestic.toml"), "210", period=JAN)
    assert [ln["quantity"] for ln in lines[:4]] == [Decimal(62), Decimal(31), Decimal(93), Decimal(24)]
    assert total(lines) == Decimal("992.00") + Decimal("496.00") + Decimal("4650.00") + Decimal("1800.00") \
        + Decimal("1500.00")


def test_ceylon_time_of_use():
    # TOU periods in file order: day, peak, off_peak.
    lines = price(load_tariffs(EXAMPLES / "lk_ceb_domestic_tou.toml"), ("100", "50", "80.5"))
    assert summary(lines) == [
        ("energy", "day", None, "100.000", "70.000000", "7000.00"),
        ("energy", "peak", None, "50.000", "90.000000", "4500.00"),
        ("energy", "off_peak", None, "80.500", "30.000000", "2415.00"),
        ("fixed_charge", None, None, None, None, "1500.00"),
    ]


def test_delhi_domestic_with_electricity_tax():
    # 200 × 3 + 200 × 4.5 + 50 × 6.5 = 1825; fixed 40; tax 5% of 1865 = 93.25.
    lines = price(load_tariffs(EXAMPLES / "in_delhi_domestic.toml"), "450")
    assert [(ln["component"], ln["amount"]) for ln in lines] == [
        ("energy", Decimal("600.00")), ("energy", Decimal("900.00")), ("energy", Decimal("325.00")),
        ("fixed_charge", Decimal("40.00")), ("tax:electricity_tax", Decimal("93.25")),
    ]


@pytest.mark.parametrize("rounding, tax", [("half_even", "61.92"), ("half_up", "61.93")])
def test_delhi_tax_tie_follows_the_site_rounding(rounding, tax):
    # 333 units: 600 + 598.50 + fixed 40 = 1238.50; 5% = 61.925 exactly.
    lines = price(load_tariffs(EXAMPLES / "in_delhi_domestic.toml"), "333", site=Site(rounding=rounding))
    assert lines[-1]["component"] == "tax:electricity_tax"
    assert lines[-1]["amount"] == Decimal(tax)


def test_guangzhou_panyu_tiered_water_and_sewage():
    # 26 × 2.70 + 8 × 4.06 + 6 × 8.10 = 70.20 + 32.48 + 48.60.
    lines = price(load_tariffs(EXAMPLES / "cn_guangzhou_panyu_water.toml"), "40")
    assert [ln["amount"] for ln in lines] == [Decimal("70.20"), Decimal("32.48"), Decimal("48.60")]


@pytest.mark.parametrize("rounding, area_charge, gst", [
    ("half_even", "3251.62", "639.29"),  # 3.25 × 1000.5 = 3251.625; 18% of 3551.62 = 639.2916
    ("half_up", "3251.63", "639.29"),    # 18% of 3551.63 = 639.2934
])
def test_society_maintenance_on_the_account(rounding, area_charge, gst):
    tariffs = load_tariffs(EXAMPLES / "society_maintenance.toml")
    tariffs["T"] = tariffs_from_toml(toml("fixed_charge = 0\n"), where="t.toml")["T"]
    lines = price(tariffs, "5", site=Site(rounding=rounding), area="1000.5", account_tariff="SOC-MAINT")
    account_lines = [ln for ln in lines if ln["meter_id"] is None]
    assert {ln["tariff_id"] for ln in account_lines} == {"SOC-MAINT"}
    assert summary(account_lines) == [
        ("area_charge", None, None, "1000.500", "3.250000", area_charge),
        ("fee:sinking_fund", None, None, None, None, "250.00"),
        ("fee:repair_fund", None, None, None, None, "400.00"),
        ("fee:parking", None, None, None, None, "300.00"),
        ("tax:gst", None, None, None, None, gst),
    ]


def test_the_version_in_force_on_the_period_start_applies():
    tariffs = load_tariffs(EXAMPLES / "society_maintenance.toml")
    tariffs["T"] = tariffs_from_toml(toml("fixed_charge = 0\n"), where="t.toml")["T"]
    lines = price(tariffs, "1", period=APR, area="1000.5", account_tariff="SOC-MAINT")
    assert [ln["amount"] for ln in lines if ln["component"] == "area_charge"] == [Decimal("3501.75")]


# -- time of use ------------------------------------------------------------------------


def test_tou_slabs_mode_prices_each_period_on_its_own_slabs():
    text = toml('[tariff.tou]\nmode = "slabs"\nperiods = ['
                '{ name = "a", energy = { slabs = [{ upto = 10, price = 1 }, { price = 2, fee = 5 }] } },'
                '{ name = "b", energy = { mode = "volume", slabs = [{ upto = 10, price = 3, fee = 1 }, '
                '{ price = 4 }] } }]\n' + ALL_DAY)
    assert summary(price(text, ("12", "10"))) == [
        ("energy", "a", 1, "10.000", "1.000000", "10.00"),
        ("energy", "a", 2, "2.000", "2.000000", "4.00"),
        ("energy", "b", 1, "10.000", "3.000000", "30.00"),
        ("slab_fee", "a", 2, None, None, "5.00"),
        ("slab_fee", "b", 1, None, None, "1.00"),
    ]


SPLIT = toml('[tariff.energy]\nslabs = [{ upto = 10, price = 1 }, { price = 2 }]\n'
             '[tariff.tou]\nmode = "split_total"\n'
             'periods = [{ name = "a", price = 0.5 }, { name = "b", price = -0.25 }]\n' + ALL_DAY)


def test_split_total_splits_each_slab_by_largest_remainder():
    # Q = 15 at whole units: slab 1 holds 10 = 70/15 + 80/15 -> floors 4, 5; the
    # larger remainder (a: 10/15) gets the last unit -> 5, 5. Slab 2 holds
    # 5 = 35/15 + 40/15 -> 2, 2; remainders 5/15 < 10/15 -> b -> 2, 3.
    lines = price(SPLIT, ("7", "8"), site=Site(quantity_decimals=0))
    assert summary(lines) == [
        ("energy", "a", 1, "5", "1.500000", "7.50"),
        ("energy", "a", 2, "2", "2.500000", "5.00"),
        ("energy", "b", 1, "5", "0.750000", "3.75"),
        ("energy", "b", 2, "3", "1.750000", "5.25"),
    ]


def test_split_total_gives_the_spare_unit_to_the_largest_remainder():
    # Q = 11: slab 1 holds 10 = 60/11 + 50/11 -> floors 5, 4, remainders 5 < 6 -> b;
    # slab 2 holds 1 = 6/11 + 5/11 -> floors 0, 0, remainders 6 > 5 -> a.
    lines = price(SPLIT, ("6", "5"), site=Site(quantity_decimals=0))
    assert [(ln["tou_period"], ln["slab"], ln["quantity"]) for ln in lines] == [
        ("a", 1, Decimal(5)), ("a", 2, Decimal(1)), ("b", 1, Decimal(5))]


def test_split_total_tie_of_one_unit_goes_to_the_earlier_period():
    text = toml('[tariff.energy]\nslabs = [{ upto = 3, price = 1 }, { price = 2 }]\n'
                '[tariff.tou]\nmode = "split_total"\nperiods = [{ name = "a" }, { name = "b" }]\n' + ALL_DAY)
    # Q = 10: slab 1 holds 3 = 1.5 + 1.5 -> floors 1, 1, equal remainders -> a.
    # Slab 2 holds 7 = 3.5 + 3.5 -> floors 3, 3, equal remainders -> a again.
    lines = price(text, ("5", "5"), site=Site(quantity_decimals=0))
    assert [(ln["tou_period"], ln["slab"], ln["quantity"]) for ln in lines] == [
        ("a", 1, Decimal(2)), ("a", 2, Decimal(4)), ("b", 1, Decimal(1)), ("b", 2, Decimal(3))]


@pytest.mark.parametrize("rounding, amount", [("half_even", "-0.12"), ("half_up", "-0.13")])
def test_negative_adder_rounds_half_away_from_zero_with_half_up(rounding, amount):
    text = toml('[tariff.energy]\nslabs = [{ price = 1 }]\n[tariff.tou]\nmode = "split_total"\n'
                'periods = [{ name = "a", price = -1.125 }, { name = "b" }]\n' + ALL_DAY)
    lines = price(text, ("1", "0"), site=Site(rounding=rounding))
    assert summary(lines) == [("energy", "a", 1, "1.000", "-0.125000", amount)]


def test_tou_price_mode_emits_no_line_for_an_empty_period():
    text = toml('[tariff.tou]\nmode = "price"\n'
                'periods = [{ name = "a", price = 2 }, { name = "b", price = 3 }]\n' + ALL_DAY)
    assert summary(price(text, ("0", "1.5"))) == [("energy", "b", None, "1.500", "3.000000", "4.50")]


# -- per-day limits, slab fees, minimum charge, taxes --------------------------------


def test_per_day_limits_scale_with_the_days_of_the_period():
    text = toml('[tariff.energy]\nlimit_basis = "per_day"\n'
                'slabs = [{ upto = 0.5, price = 1 }, { price = 2 }]\n')
    assert [ln["quantity"] for ln in price(text, "20", period=JAN)] == [Decimal("15.5"), Decimal("4.5")]
    assert [ln["quantity"] for ln in price(text, "20", period=APR)] == [Decimal(15), Decimal(5)]


def test_zero_consumption_charges_the_first_slab_fee_and_the_fixed_charge():
    text = toml("fixed_charge = 20\n"
                "[tariff.energy]\nslabs = [{ upto = 10, price = 1, fee = 7 }, { price = 2 }]\n")
    assert summary(price(text, "0")) == [
        ("slab_fee", None, 1, None, None, "7.00"),
        ("fixed_charge", None, None, None, None, "20.00"),
    ]


def test_minimum_charge_tops_up_every_line_by_default():
    text = toml("fixed_charge = 20\nminimum_charge = 100\n[tariff.energy]\nslabs = [{ price = 3 }]\n")
    assert [(ln["component"], str(ln["amount"])) for ln in price(text, "10")] == [
        ("energy", "30.00"), ("fixed_charge", "20.00"), ("minimum_charge", "50.00")]
    assert [ln["component"] for ln in price(text, "30")] == ["energy", "fixed_charge"]  # covered: no line


def test_minimum_charge_over_named_components():
    text = toml('fixed_charge = 20\nminimum_charge = { amount = 100, on = ["energy"] }\n'
                "[tariff.energy]\nslabs = [{ price = 3 }]\n")
    assert price(text, "10")[-1]["amount"] == Decimal("70.00")


def test_minimum_charge_is_rounded_after_the_subtraction():
    # 100.005 - 50.01 = 49.995 -> 50.00 (half even: 4999.5 -> 5000); rounding the
    # minimum first would give 100.00 - 50.01 = 49.99.
    text = toml("minimum_charge = 100.005\n[tariff.energy]\nslabs = [{ price = 50.01 }]\n")
    assert price(text, "1")[-1]["amount"] == Decimal("50.00")


def test_taxes_name_their_components_including_the_minimum_charge():
    text = toml('fixed_charge = 10\nfees = [{ name = "club", amount = 100 }]\nminimum_charge = 200\n'
                '[tariff.energy]\nslabs = [{ upto = 5, price = 2 }, { price = 4, fee = 1 }]\n'
                '[[tariff.taxes]]\nname = "duty"\npercent = 10\n'
                'on = ["energy", "slab_fee", "minimum_charge"]\n'
                '[[tariff.taxes]]\nname = "gst"\npercent = 18\non = ["fee:club"]\n')
    # energy 10 + 4 = 14, slab fee 1, fixed 10, club 100, minimum 200 - 125 = 75;
    # duty 10% of 14 + 1 + 75 = 9.00, gst 18% of 100 = 18.00.
    assert [(ln["component"], str(ln["amount"])) for ln in price(text, "6")] == [
        ("energy", "10.00"), ("energy", "4.00"), ("slab_fee", "1.00"), ("fixed_charge", "10.00"),
        ("fee:club", "100.00"), ("minimum_charge", "75.00"), ("tax:duty", "9.00"), ("tax:gst", "18.00")]


def test_a_tax_line_is_emitted_on_a_zero_base():
    text = toml('fixed_charge = 0\n[[tariff.taxes]]\nname = "vat"\npercent = 5\non = ["fixed_charge"]\n')
    assert summary(price(text, "0")) == [
        ("fixed_charge", None, None, None, None, "0.00"), ("tax:vat", None, None, None, None, "0.00")]


@pytest.mark.parametrize("rounding, amounts", [
    ("half_even", ["0.12", "0.38", "0.12"]),
    ("half_up", ["0.13", "0.38", "0.13"]),
])
def test_half_even_and_half_up_on_line_ties(rounding, amounts):
    # 1 × 0.125, 3 × 0.125 = 0.375, fixed 0.125: each line is rounded on its own.
    text = toml("fixed_charge = 0.125\n[tariff.tou]\nmode = \"price\"\n"
                'periods = [{ name = "a", price = 0.125 }, { name = "b", price = 0.125 }]\n' + ALL_DAY)
    assert [str(ln["amount"]) for ln in price(text, ("1", "3"), site=Site(rounding=rounding))] == amounts


def test_minor_unit_exponent_zero_and_three_quantity_decimals():
    site = Site(currency="JPY", minor_unit_exponent=0, quantity_decimals=2)
    lines = price(toml("[tariff.energy]\nslabs = [{ price = 29.8 }]\n"), "10.25", site=site)
    assert summary(lines) == [("energy", None, 1, "10.25", "29.800000", "305")]  # 305.45 -> 305


# -- exact beyond int64 ----------------------------------------------------------------


def test_products_past_int64_take_the_exact_path():
    site = Site(quantity_decimals=6)
    qty = "4611686018427.387903"  # 2^62 quantity units
    lines = price(toml("[tariff.energy]\nslabs = [{ price = 0.333335 }]\n"), qty, site=site)
    expected = (Decimal(qty) * Decimal("0.333335")).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert lines[0]["amount"] == expected == Decimal("1537236358952.49")


def test_split_total_past_int64_is_exact():
    site = Site(quantity_decimals=6)
    text = toml('[tariff.energy]\n'
                'slabs = [{ upto = 100000000000, price = 0.000001 }, { price = 0.000002 }]\n'
                '[tariff.tou]\nmode = "split_total"\nperiods = [{ name = "a" }, { name = "b" }]\n' + ALL_DAY)
    lines = price(text, ("3000000000000.000001", "1000000000000.000002"), site=site)
    # In units: q = (3·10^18 + 1, 10^18 + 2), Q = 4·10^18 + 3. Slab 1 holds 10^17:
    # floors 74999999999999999 (remainder 3.875·10^18) and 2.5·10^16 (remainder
    # 1.25·10^17) -> a. Slab 2 holds 3.9·10^18 + 3: floors 2925000000000000001
    # (remainder 1.25·10^17) and 975000000000000001 (remainder 3.875·10^18) -> b.
    assert [(ln["tou_period"], ln["slab"], str(ln["quantity"]), str(ln["amount"])) for ln in lines] == [
        ("a", 1, "75000000000.000000", "75000.00"),
        ("a", 2, "2925000000000.000001", "5850000.00"),
        ("b", 1, "25000000000.000000", "25000.00"),
        ("b", 2, "975000000000.000002", "1950000.00"),
    ]


def test_an_amount_past_int64_is_an_error_not_a_wrap():
    site = Site(quantity_decimals=0)
    with pytest.raises(AmountOverflowError):
        price(toml("[tariff.energy]\nslabs = [{ price = 999999 }]\n"), str(2**62), site=site)


# -- rows, order, errors --------------------------------------------------------------


def registry_of(meters, accounts):
    return Registry([Meter(*m) for m in meters],
                    [Account(a, area=Decimal(1), tariff_id=t) for a, t in accounts])


def test_lines_are_ordered_by_account_meter_period_component_tou_slab():
    tariffs = tariffs_from_toml(
        toml("fixed_charge = 1\n[tariff.energy]\nslabs = [{ upto = 1, price = 1 }, { price = 2 }]\n", "E")
        + toml('fees = [{ name = "z", amount = 1 }, { name = "a", amount = 2 }]\n', "ACC"),
        where="t.toml")
    registry = registry_of(
        [("m2", "B", "E"), ("m10", "A", "E"), ("m1", "B", "E")], [("B", "ACC"), ("A", None)])
    periods = PeriodQuantities(
        meter_index=np.array([2, 0, 1, 2, 0], dtype=np.int32),
        period_start=np.array([days(p[0]) for p in (APR, JAN, JAN, JAN, APR)], np.int32),
        period_end=np.array([days(p[1]) for p in (APR, JAN, JAN, JAN, APR)], np.int32),
        qty=np.array([[2000], [0], [500], [3000], [1000]], dtype=np.int64),
    )
    table = price_periods(periods, registry=registry, tariffs=tariffs, site=SITE)
    keys = [(r["account_id"], r["meter_id"], r["period_start"].month, r["component"], r["slab"])
            for r in table.to_pylist()]
    assert keys == [
        ("A", "m10", 1, "energy", 1), ("A", "m10", 1, "fixed_charge", None),
        ("B", "m1", 1, "energy", 1), ("B", "m1", 1, "energy", 2), ("B", "m1", 1, "fixed_charge", None),
        ("B", "m1", 4, "energy", 1), ("B", "m1", 4, "energy", 2), ("B", "m1", 4, "fixed_charge", None),
        ("B", "m2", 1, "fixed_charge", None),
        ("B", "m2", 4, "energy", 1), ("B", "m2", 4, "fixed_charge", None),
        ("B", None, 1, "fee:z", None), ("B", None, 1, "fee:a", None),  # once per account period
        ("B", None, 4, "fee:z", None), ("B", None, 4, "fee:a", None),
    ]
    assert table.column("period_end").to_pylist()[0] == dt.date(2026, 1, 31)  # the last day


def test_integer_meter_ids_sort_as_numbers():
    tariffs = tariffs_from_toml(toml("fixed_charge = 1\n"), where="t.toml")
    registry = registry_of([(10, "A", "T"), (9, "A", "T")], [("A", None)])
    periods = PeriodQuantities(np.array([0, 1], np.int32), np.full(2, days(JAN[0]), np.int32),
                               np.full(2, days(JAN[1]), np.int32), np.zeros((2, 1), np.int64))
    table = price_periods(periods, registry=registry, tariffs=tariffs, site=SITE)
    assert table.schema.field("meter_id").type == pa.int64()
    assert table.column("meter_id").to_pylist() == [9, 10]


def test_no_periods_give_an_empty_table():
    registry = registry_of([("m", "A", "T")], [("A", None)])
    empty = PeriodQuantities(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32),
                             np.zeros((0, 1), np.int64))
    tariffs = tariffs_from_toml(toml("fixed_charge = 1\n"), where="t.toml")
    table = price_periods(empty, registry=registry, tariffs=tariffs, site=SITE)
    assert table.num_rows == 0 and table.schema == charges_schema(SITE)


def test_unknown_meter_tariff_names_the_meter_even_when_not_read():
    tariffs = tariffs_from_toml(toml("fixed_charge = 1\n"), where="t.toml")
    registry = registry_of([("m1", "A", "T"), ("m2", "A", "NOPE")], [("A", None)])
    periods = PeriodQuantities(np.array([0], np.int32), np.array([days(JAN[0])], np.int32),
                               np.array([days(JAN[1])], np.int32), np.zeros((1, 1), np.int64))
    with pytest.raises(TariffError, match="meter 'm2' refers to unknown tariff 'NOPE'"):
        price_periods(periods, registry=registry, tariffs=tariffs, site=SITE)


def test_unknown_account_tariff_names_the_account():
    with pytest.raises(TariffError, match="account 'A' refers to unknown tariff 'NOPE'"):
        price(toml("fixed_charge = 1\n"), "1", account_tariff="NOPE")


def test_no_version_in_force_names_the_meter_its_row_and_the_tariff_file():
    with pytest.raises(TariffError) as error:
        price(toml("fixed_charge = 1\n", effective_from="2026-02-01"), "1")
    assert error.value.where == "meters row 1 (meter 'M')"
    assert error.value.message.startswith(
        "tariff 'T' (defined in t.toml) has no version in force on 2026-01-01")
    assert error.value.details == {"tariff": "T"}


def test_an_account_tariff_with_energy_is_priced_at_zero_quantity():
    tariffs = tariffs_from_toml(
        toml("fixed_charge = 1\n") + toml("[tariff.energy]\nslabs = [{ upto = 1, price = 9, fee = 3 }, "
                                          "{ price = 9 }]\n", "ACC"), where="t.toml")
    lines = price(tariffs, "5", account_tariff="ACC")
    account_lines = [ln for ln in lines if ln["meter_id"] is None]
    assert summary(account_lines) == [("slab_fee", None, 1, None, None, "3.00")]


def test_bounds_finer_than_the_quantity_resolution_are_a_tariff_error():
    text = toml("[tariff.energy]\nslabs = [{ upto = 1.5, price = 1 }, { price = 2 }]\n")
    with pytest.raises(TariffError, match="finer than the site's quantity resolution") as info:
        price(text, "1", site=Site(quantity_decimals=0))
    assert info.value.where == "tariff T (2025-01-01) energy.slabs[0]"


def test_per_day_bounds_finer_than_the_resolution_are_refused_in_every_month():
    text = toml('[tariff.energy]\nlimit_basis = "per_day"\n'
                'slabs = [{ upto = 0.5, price = 1 }, { price = 2 }]\n')
    with pytest.raises(TariffError, match="finer than the site's quantity resolution"):
        price(text, "1", site=Site(quantity_decimals=0), period=APR)  # 15 kWh in April, still refused
