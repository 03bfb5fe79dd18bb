"""Tariff files: every rejection names the file, the version, the field and why;
valid files come back as the tariff dataclasses, exactly (Decimal, never float)."""

from __future__ import annotations

import datetime as dt
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.config.tariff_file import load_tariffs, tariffs_from_toml
from rating.errors import TariffError
from rating.model.tariff import (
    DAY_TYPES,
    Slab,
    SlabSet,
    Tariff,
    TariffVersion,
    Tax,
    TimeOfUse,
    TouPeriod,
    TouRule,
)
from tests.toml_strategies import TOML_VALUES, loads_or_refuses, places, replaced, toml_document

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "tariffs"
HEAD = '[[tariff]]\nid = "T"\neffective_from = 2026-04-01\n'
ENERGY = '[tariff.energy]\nslabs = [{ upto = 100, price = 3 }, { price = 4.5 }]\n'
ALL_DAY = 'schedules = [{ spans = { all = ["00:00-24:00"] } }]\n'


def reject(text: str, field: str, reason: str) -> TariffError:
    with pytest.raises(TariffError) as info:
        tariffs_from_toml(text, where="t.toml")
    message = str(info.value)
    assert field in message, message
    assert reason in message, message
    return info.value


def reject_in_version(body: str, field: str, reason: str) -> None:
    error = reject(HEAD + body, f"t.toml: tariff T (2026-04-01) {field}: ", reason)
    assert error.where == f"t.toml: tariff T (2026-04-01) {field}"


# -- the file and the version header -------------------------------------------


def test_not_toml_is_rejected_naming_the_file():
    reject("[[tariff]\n", "t.toml: ", "not valid TOML")


def test_unknown_top_level_key():
    reject('tarif = 1\n' + HEAD + ENERGY, "t.toml tarif: ", "unknown key")


def test_missing_id_names_the_entry_by_position():
    reject('[[tariff]]\neffective_from = 2026-04-01\n' + ENERGY, "t.toml: tariff[0] id: ", "is missing")


def test_missing_effective_from():
    reject('[[tariff]]\nid = "T"\n' + ENERGY, "t.toml: tariff T effective_from: ", "is missing")


def test_effective_from_must_be_a_toml_date():
    reject('[[tariff]]\nid = "T"\neffective_from = "2026-04-01"\n' + ENERGY,
           "t.toml: tariff T effective_from: ", "must be a TOML date")
    reject('[[tariff]]\nid = "T"\neffective_from = 2026-04-01T00:00:00\n' + ENERGY,
           "t.toml: tariff T effective_from: ", "must be a TOML date")


def test_duplicate_versions_are_rejected():
    text = HEAD + ENERGY + HEAD + ENERGY
    reject(text, "t.toml: tariff T (2026-04-01) effective_from: ", "duplicates the version in tariff[0]")


def test_unknown_key_in_a_version():
    reject_in_version('colour = "red"\n' + ENERGY, "colour", "unknown key")


def test_a_version_must_charge_something():
    reject(HEAD, "t.toml: tariff T (2026-04-01): ", "charges nothing")


def test_load_tariffs_names_a_missing_file(tmp_path):
    with pytest.raises(TariffError, match="cannot read tariff file") as info:
        load_tariffs(tmp_path / "nope.toml")
    assert info.value.where == str(tmp_path / "nope.toml")


# -- numbers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, reason",
    [
        ('"1.5"', "must be a number"),
        ("true", "must be a number"),
        ("nan", "must be a finite number"),
        ("inf", "must be a finite number"),
        ("0.1234567", "has more than 6 decimals"),
        ("-1", "must not be negative"),
        ("1e12", "below 10^12"),
    ],
)
def test_bad_prices(value, reason):
    body = f"[tariff.energy]\nslabs = [{{ price = {value} }}]\n"
    reject_in_version(body, "energy.slabs[0].price", reason)


def test_bad_fixed_charge():
    reject_in_version("fixed_charge = 10.0000001\n", "fixed_charge", "more than 6 decimals")


# -- slabs ------------------------------------------------------------------------


def test_missing_price():
    reject_in_version("[tariff.energy]\nslabs = [{ upto = 10 }, { price = 1 }]\n",
                      "energy.slabs[0].price", "is missing")


def test_unknown_slab_key():
    reject_in_version("[tariff.energy]\nslabs = [{ upto = 10, prce = 1 }, { price = 1 }]\n",
                      "energy.slabs[0].prce", "unknown key")


def test_unsorted_bounds():
    body = "[tariff.energy]\nslabs = [{ upto = 100, price = 1 }, { upto = 50, price = 2 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[1].upto", "is below the previous bound 100")


def test_duplicate_bounds():
    body = ("[tariff.energy]\nslabs = [{ upto = 100, price = 1 }, { upto = 100.0, price = 2 }, "
            "{ price = 3 }]\n")
    reject_in_version(body, "energy.slabs[1].upto", "duplicates the previous bound 100")


@pytest.mark.parametrize("width", ["0", "-5"])
def test_non_positive_widths(width):
    body = f"[tariff.energy]\nslabs = [{{ width = {width}, price = 1 }}, {{ price = 3 }}]\n"
    reject_in_version(body, "energy.slabs[0].width", "must be positive")


def test_first_upto_must_be_positive():
    body = "[tariff.energy]\nslabs = [{ upto = 0, price = 1 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[0].upto", "must be positive")


def test_mixed_upto_and_width():
    body = "[tariff.energy]\nslabs = [{ upto = 10, price = 1 }, { width = 10, price = 2 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[1].width", "mixes width with upto")


def test_both_upto_and_width_in_one_slab():
    body = "[tariff.energy]\nslabs = [{ upto = 10, width = 10, price = 1 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[0]", "gives both upto and width")


def test_open_slab_that_is_not_last():
    body = "[tariff.energy]\nslabs = [{ price = 1 }, { upto = 10, price = 2 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[0]", "only the last slab may be open")


def test_last_slab_must_be_open():
    body = "[tariff.energy]\nslabs = [{ upto = 10, price = 1 }, { upto = 20, price = 2 }]\n"
    reject_in_version(body, "energy.slabs[1].upto", "the last slab is open-ended")


def test_bounds_finer_than_a_millionth():
    body = "[tariff.energy]\nslabs = [{ upto = 0.0000001, price = 1 }, { price = 3 }]\n"
    reject_in_version(body, "energy.slabs[0].upto", "more than 6 decimals")


def test_unknown_slab_mode_and_basis():
    reject_in_version('[tariff.energy]\nmode = "telescopic"\nslabs = [{ price = 1 }]\n',
                      "energy.mode", "must be one of graduated, volume")
    reject_in_version('[tariff.energy]\nlimit_basis = "day"\nslabs = [{ price = 1 }]\n',
                      "energy.limit_basis", "must be one of period, per_day")


def test_no_slabs():
    reject_in_version("[tariff.energy]\nslabs = []\n", "energy.slabs", "non-empty array")


# -- time of use ------------------------------------------------------------------


def tou(mode: str, periods: str, schedules: str) -> str:
    return f'[tariff.tou]\nmode = "{mode}"\nperiods = {periods}\n{schedules}'


PRICED = '[{ name = "peak", price = 9 }, { name = "off", price = 4 }]'
ONE = '[{ name = "all", price = 1 }]'


def two_spans(peak: str, off: str) -> str:
    return f'schedules = [{{ spans = {{ peak = ["{peak}"], off = ["{off}"] }} }}]\n'


def test_schedule_gap_within_a_day():
    body = tou("price", PRICED, two_spans("00:00-12:00", "13:00-24:00"))
    reject_in_version(body, "tou.schedules[0].spans", "leave 12:00-13:00 without a TOU period")


def test_schedule_gap_at_the_end_of_the_day():
    body = tou("price", PRICED, two_spans("00:00-12:00", "12:00-23:00"))
    reject_in_version(body, "tou.schedules[0].spans", "leave 23:00-24:00 without a TOU period")


def test_schedule_overlap_within_a_day():
    body = tou("price", PRICED, two_spans("00:00-13:00", "12:00-24:00"))
    reject_in_version(body, "tou.schedules[0].spans.off[0]", "12:00-24:00 overlaps an earlier span")


def test_month_and_day_type_covered_by_no_schedule():
    spans = '{ peak = ["00:00-12:00"], off = ["12:00-24:00"] }'
    body = tou("price", PRICED, f"schedules = [{{ months = [1,2,3,4,5,6,7,8,9,10,11], spans = {spans} }}]\n")
    reject_in_version(body, "tou.schedules", "no schedule covers month 12 weekday (and 2 more)")


def test_month_and_day_type_covered_by_two_schedules():
    spans = '{ peak = ["00:00-12:00"], off = ["12:00-24:00"] }'
    body = tou("price", PRICED, f'schedules = [{{ spans = {spans} }}, '
               f'{{ months = [7], day_types = ["holiday"], spans = {spans} }}]\n')
    reject_in_version(body, "tou.schedules[1]", "month 7 holiday is already covered by tou.schedules[0]")


@pytest.mark.parametrize(
    "span, reason",
    [
        ("9:00-12:00", 'must be a local time span "HH:MM-HH:MM"'),
        ("00:00-24:30", "is not a valid time of day"),
        ("00:60-24:00", "is not a valid time of day"),
        ("22:00-06:00", "ends before it starts"),
        ("12:00-12:00", "ends before it starts"),
    ],
)
def test_bad_spans(span, reason):
    body = tou("price", ONE, f'schedules = [{{ spans = {{ all = ["{span}"] }} }}]\n')
    reject_in_version(body, "tou.schedules[0].spans.all[0]", reason)


def test_span_of_an_unknown_period():
    body = tou("price", ONE, 'schedules = [{ spans = { al = ["00:00-24:00"] } }]\n')
    reject_in_version(body, "tou.schedules[0].spans.al", "is not a TOU period (periods: all)")


def test_bad_months_and_day_types():
    spans = '{ all = ["00:00-24:00"] }'
    period = '[{ name = "all", price = 1 }]'
    reject_in_version(tou("price", period, f"schedules = [{{ months = [13], spans = {spans} }}]\n"),
                      "tou.schedules[0].months[0]", "must be a month number 1-12")
    reject_in_version(tou("price", period, f"schedules = [{{ months = [1, 1], spans = {spans} }}]\n"),
                      "tou.schedules[0].months[1]", "repeats month 1")
    reject_in_version(tou("price", period, f'schedules = [{{ day_types = ["sunday"], spans = {spans} }}]\n'),
                      "tou.schedules[0].day_types[0]", "must be one of weekday, weekend, holiday")


def test_price_mode_needs_every_period_price():
    body = tou("price", '[{ name = "peak", price = 9 }, { name = "off" }]', ALL_DAY)
    reject_in_version(body, "tou.periods[1].price", "tou mode price needs every period's price")


def test_slabs_mode_needs_every_period_slabs():
    body = tou("slabs", '[{ name = "all" }]', ALL_DAY)
    reject_in_version(body, "tou.periods[0].energy", "tou mode slabs needs every period's own slabs")


def test_slabs_mode_takes_no_period_price():
    body = tou("slabs", '[{ name = "all", price = 1, energy = { slabs = [{ price = 1 }] } }]', ALL_DAY)
    reject_in_version(body, "tou.periods[0].price", "is not used by tou mode slabs")


def test_split_total_needs_the_energy_slabs():
    body = tou("split_total", '[{ name = "all" }]', ALL_DAY)
    reject_in_version(body, "tou.mode", "[tariff.energy] is missing")


def test_energy_slabs_with_price_mode_are_rejected():
    body = ENERGY + tou("price", '[{ name = "all", price = 1 }]', ALL_DAY)
    reject_in_version(body, "energy", "used only by tou modes split_total and matrix")


def test_period_slabs_outside_slabs_mode_are_rejected():
    body = tou("price", '[{ name = "all", price = 1, energy = { slabs = [{ price = 1 }] } }]', ALL_DAY)
    reject_in_version(body, "tou.periods[0].energy", "is only used by tou mode slabs")


def test_negative_price_mode_price_is_rejected():
    body = tou("price", '[{ name = "all", price = -1 }]', ALL_DAY)
    reject_in_version(body, "tou.periods[0].price", "must not be negative")


def test_duplicate_and_unused_periods():
    reject_in_version(tou("price", '[{ name = "a", price = 1 }, { name = "a", price = 2 }]', ALL_DAY),
                      "tou.periods[1].name", "repeats the period name 'a'")
    body = tou("price", '[{ name = "all", price = 1 }, { name = "spare", price = 2 }]', ALL_DAY)
    reject_in_version(body, "tou.periods[1]", "period 'spare' is in no schedule's spans")


def test_unknown_tou_mode():
    reject_in_version(tou("peak", '[{ name = "all", price = 1 }]', ALL_DAY),
                      "tou.mode", "must be one of price, slabs, split_total")


# -- fees, minimum charge, taxes ----------------------------------------------------


def test_tax_on_an_unknown_component():
    body = ENERGY + '[[tariff.taxes]]\nname = "vat"\npercent = 5\non = ["energy", "fee:gym"]\n'
    reject_in_version(body, "taxes[0].on[1]", "'fee:gym' is not a component of this tariff (it has: energy)")


def test_tax_on_a_component_the_tariff_does_not_charge():
    body = ENERGY + '[[tariff.taxes]]\nname = "vat"\npercent = 5\non = ["fixed_charge"]\n'
    reject_in_version(body, "taxes[0].on[0]", "'fixed_charge' is not a component")


def test_tax_on_a_tax_is_rejected():
    body = ENERGY + ('[[tariff.taxes]]\nname = "a"\npercent = 5\non = ["energy"]\n'
                     '[[tariff.taxes]]\nname = "b"\npercent = 5\non = ["tax:a"]\n')
    reject_in_version(body, "taxes[1].on[0]", "'tax:a' is not a component")


def test_tax_fields():
    reject_in_version(ENERGY + '[[tariff.taxes]]\nname = "vat"\non = ["energy"]\n',
                      "taxes[0].percent", "is missing")
    reject_in_version(ENERGY + '[[tariff.taxes]]\nname = "vat"\npercent = 5\non = []\n',
                      "taxes[0].on", "non-empty array")
    reject_in_version(ENERGY + '[[tariff.taxes]]\nname = "vat"\npercent = 5\non = ["energy", "energy"]\n',
                      "taxes[0].on[1]", "repeats 'energy'")
    body = ENERGY + ('[[tariff.taxes]]\nname = "vat"\npercent = 5\non = ["energy"]\n'
                     '[[tariff.taxes]]\nname = "vat"\npercent = 6\non = ["energy"]\n')
    reject_in_version(body, "taxes[1].name", "repeats the tax name 'vat'")


def test_minimum_charge_on_unknown_or_later_components():
    reject_in_version('minimum_charge = { amount = 100, on = ["fixed_charge"] }\n' + ENERGY,
                      "minimum_charge.on[0]", "'fixed_charge' is not a component")
    reject_in_version('minimum_charge = { amount = 100, on = ["minimum_charge"] }\n' + ENERGY,
                      "minimum_charge.on[0]", "'minimum_charge' is not a component")
    reject_in_version('minimum_charge = { on = ["energy"] }\n' + ENERGY,
                      "minimum_charge.amount", "is missing")


def test_fee_fields():
    reject_in_version('fees = [{ name = "gym" }]\n', "fees[0].amount", "is missing")
    reject_in_version('fees = [{ name = "gym", amount = 1 }, { name = "gym", amount = 2 }]\n',
                      "fees[1].name", "repeats the fee name 'gym'")
    reject_in_version('fees = [{ name = "", amount = 1 }]\n', "fees[0].name", "non-empty string")


# -- valid files --------------------------------------------------------------------


def test_widths_become_cumulative_bounds():
    text = HEAD + ("[tariff.energy]\nslabs = [{ width = 10, price = 1.5 }, { width = 100, price = 1.0 }, "
                   "{ width = 1000, price = 0.5 }, { price = 0.25 }]\n")
    energy = tariffs_from_toml(text, where="t.toml")["T"].versions[0].energy
    assert [s.upper for s in energy.slabs] == [Decimal(10), Decimal(110), Decimal(1110), None]
    assert energy == SlabSet("graduated", "period", (
        Slab(Decimal(10), Decimal("1.5")), Slab(Decimal(110), Decimal(1)),
        Slab(Decimal(1110), Decimal("0.5")), Slab(None, Decimal("0.25")),
    ))


def test_numbers_are_decimals_never_floats():
    text = HEAD + ("fixed_charge = 5\n[tariff.energy]\n"
                   "slabs = [{ upto = 0.1, price = 0.1, fee = 2 }, { price = 3 }]\n")
    version = tariffs_from_toml(text, where="t.toml")["T"].versions[0]
    values = [version.fixed_charge, version.energy.slabs[0].upper, version.energy.slabs[0].price,
              version.energy.slabs[0].fee, version.energy.slabs[1].price]
    assert all(type(v) is Decimal for v in values)
    assert version.energy.slabs[0].price == Decimal("0.1")  # not 0.1000000000000000055...


def test_a_full_version_round_trips_to_the_dataclasses():
    text = '''
[[tariff]]
id = "HOME"
name = "Home, summer peak"
unit = "kWh"
effective_from = 2026-04-01
fixed_charge = 50
area_charge = 1.25
fees = [{ name = "club", amount = 100 }, { name = "parking", amount = 250.50 }]
minimum_charge = { amount = 300, on = ["energy", "fixed_charge"] }

[tariff.energy]
mode = "volume"
limit_basis = "per_day"
slabs = [{ upto = 5, price = 6, fee = 10 }, { price = 8, fee = 20 }]

[tariff.tou]
mode = "split_total"
periods = [{ name = "peak", price = 1.5 }, { name = "normal" }, { name = "night", price = -0.75 }]

[[tariff.tou.schedules]]
months = [4, 5, 6, 7, 8, 9]
day_types = ["weekday"]
spans = { night = ["00:00-06:00", "22:00-24:00"], normal = ["06:00-18:00"], peak = ["18:00-22:00"] }

[[tariff.tou.schedules]]
months = [4, 5, 6, 7, 8, 9]
day_types = ["weekend", "holiday"]
spans = { night = ["00:00-06:00", "22:00-24:00"], normal = ["06:00-22:00"] }

[[tariff.tou.schedules]]
months = [1, 2, 3, 10, 11, 12]
spans = { normal = ["06:00-22:00"], night = ["00:00-06:00", "22:00-24:00"] }

[[tariff.taxes]]
name = "duty"
percent = 16
on = ["energy", "slab_fee", "fixed_charge", "minimum_charge"]

[[tariff.taxes]]
name = "gst"
percent = 18
on = ["area_charge", "fee:club"]
'''
    night_all = ((0, 360, 2), (360, 1320, 1), (1320, 1440, 2))
    expected = TariffVersion(
        tariff_id="HOME",
        effective_from=dt.date(2026, 4, 1),
        unit="kWh",
        energy=SlabSet("volume", "per_day", (
            Slab(Decimal(5), Decimal(6), Decimal(10)), Slab(None, Decimal(8), Decimal(20)))),
        tou=TimeOfUse(
            "split_total",
            (TouPeriod("peak", Decimal("1.5")), TouPeriod("normal"), TouPeriod("night", Decimal("-0.75"))),
            (
                TouRule(frozenset(range(4, 10)), frozenset({"weekday"}),
                        ((0, 360, 2), (360, 1080, 1), (1080, 1320, 0), (1320, 1440, 2))),
                TouRule(frozenset(range(4, 10)), frozenset({"weekend", "holiday"}), night_all),
                TouRule(frozenset({1, 2, 3, 10, 11, 12}), frozenset(DAY_TYPES), night_all),
            ),
        ),
        fixed_charge=Decimal(50),
        area_charge_rate=Decimal("1.25"),
        fees=(("club", Decimal(100)), ("parking", Decimal("250.50"))),
        minimum_charge=Decimal(300),
        minimum_on=("energy", "fixed_charge"),
        taxes=(
            Tax("duty", Decimal(16), ("energy", "slab_fee", "fixed_charge", "minimum_charge")),
            Tax("gst", Decimal(18), ("area_charge", "fee:club")),
        ),
    )
    tariffs = tariffs_from_toml(text, where="home.toml")
    assert tariffs == {"HOME": Tariff("HOME", "Home, summer peak", (expected,))}
    assert tariffs["HOME"].versions[0].tou.period_at(7, "weekday", 19 * 60) == 0


def test_slabs_mode_periods_have_their_own_slab_sets():
    body = tou("slabs", '[{ name = "all", energy = { mode = "volume", slabs = [{ upto = 10, price = 1 }, '
               '{ price = 2 }] } }]', ALL_DAY)
    version = tariffs_from_toml(HEAD + body, where="t.toml")["T"].versions[0]
    assert version.tou.periods[0] == TouPeriod(
        "all", None, SlabSet("volume", "period", (Slab(Decimal(10), Decimal(1)), Slab(None, Decimal(2)))))


def test_minimum_charge_as_a_plain_amount_covers_every_line():
    version = tariffs_from_toml(HEAD + "minimum_charge = 99.5\n" + ENERGY, where="t.toml")["T"].versions[0]
    assert (version.minimum_charge, version.minimum_on) == (Decimal("99.5"), None)


def test_versions_are_sorted_and_the_latest_name_wins():
    text = ('[[tariff]]\nid = "T"\nname = "new"\neffective_from = 2026-04-01\nfixed_charge = 2\n'
            '[[tariff]]\nid = "T"\nname = "old"\neffective_from = 2025-04-01\nfixed_charge = 1\n'
            '[[tariff]]\nid = "U"\neffective_from = 2025-04-01\nfixed_charge = 1\n')
    tariffs = tariffs_from_toml(text, where="t.toml")
    assert [v.effective_from for v in tariffs["T"].versions] == [dt.date(2025, 4, 1), dt.date(2026, 4, 1)]
    assert tariffs["T"].name == "new"
    assert tariffs["U"].name == "U"  # no name: the id
    assert tariffs["T"].version_on(dt.date(2026, 3, 31)).fixed_charge == 1


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_example_files_load(path):
    tariffs = load_tariffs(path)
    assert tariffs
    for tariff in tariffs.values():
        assert all(v.tariff_id == tariff.id for v in tariff.versions)


# -- hostile files: never anything but a TariffError -------------------------------------------


def test_a_tariff_file_that_is_not_utf8_names_the_line_and_column(tmp_path):
    path = tmp_path / "t.toml"
    path.write_bytes(HEAD.encode() + b'name = "Tarif \xe9t\xe9"\n' + ENERGY.encode())
    with pytest.raises(TariffError) as info:
        load_tariffs(path)
    assert info.value.where == str(path)
    assert info.value.message.startswith("not UTF-8 text: byte 0xe9 at line 4, column 15")


EXAMPLE_DOCUMENTS = [tomllib.loads(path.read_text(), parse_float=Decimal)
                     for path in sorted(EXAMPLES.glob("*.toml"))]


@given(st.data(), TOML_VALUES)
def test_any_toml_value_anywhere_in_a_tariff_file_is_a_tariff_or_a_tariff_error(data, value):
    doc = data.draw(st.sampled_from(EXAMPLE_DOCUMENTS))
    place = data.draw(st.sampled_from(places(doc)[1:]))
    try:
        tariffs_from_toml(toml_document(replaced(doc, place, value)), where="t.toml")
    except TariffError as error:
        assert error.where is not None and error.where.startswith("t.toml"), error


@given(st.binary(max_size=64))
def test_random_bytes_are_a_tariff_file_or_a_tariff_error(data):
    loads_or_refuses(data, load_tariffs, TariffError, "t.toml")
