"""Tariff files with an energy rate matrix (tou mode matrix), package pricing and
export credits: what they read into, and every bad definition refused naming
file, version and field."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from rating.config.loader import Config
from rating.config.tariff_file import tariffs_from_toml
from rating.engine import rate
from rating.errors import TariffError
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Package
from tests.test_tariff_file import HEAD, reject_in_version

TIERS = '[tariff.energy]\nslabs = [{ upto = 100 }, { upto = 300 }, {}]\n'
ALL_DAY = 'schedules = [{ spans = { a = ["00:00-12:00"], b = ["12:00-24:00"] } }]\n'


def matrix(periods: str, energy: str = TIERS) -> str:
    return f'{energy}[tariff.tou]\nmode = "matrix"\nperiods = {periods}\n{ALL_DAY}'


GOOD = matrix('[{ name = "a", prices = [0.3, 0.35, 0.4] }, { name = "b", prices = [0.1, 0.12, 0.15] }]')


def test_a_matrix_reads_tier_bounds_from_energy_and_prices_from_the_periods():
    (tariff,) = tariffs_from_toml(HEAD + GOOD, where="t.toml").values()
    version = tariff.versions[0]
    assert version.tou.mode == "matrix"
    assert [s.upper for s in version.energy.slabs] == [Decimal(100), Decimal(300), None]
    assert version.tou.periods[1].tier_prices == (Decimal("0.1"), Decimal("0.12"), Decimal("0.15"))


@pytest.mark.parametrize("body, field, words", [
    (matrix('[{ name = "a", prices = [1, 2] }, { name = "b", prices = [1, 2, 3] }]'),
     "tou.periods[0].prices", "must be an array of 3 prices"),
    (matrix('[{ name = "a", prices = [1, 2, -3] }, { name = "b", prices = [1, 2, 3] }]'),
     "tou.periods[0].prices[2]", "must not be negative"),
    (matrix('[{ name = "a", prices = [1, 2, "3"] }, { name = "b", prices = [1, 2, 3] }]'),
     "tou.periods[0].prices[2]", "must be a number"),
    (matrix('[{ name = "a", prices = [1, 2, 3] }, { name = "b", price = 1, prices = [1, 2, 3] }]'),
     "tou.periods[1].price", "is not used by tou mode matrix"),
    (matrix('[{ name = "a" }, { name = "b", prices = [1, 2, 3] }]'),
     "tou.periods[0].prices", "must be an array of 3 prices"),
    (matrix('[{ name = "a", prices = [1, 2] }, { name = "b", prices = [1, 2] }]',
            '[tariff.energy]\nslabs = [{ upto = 100, price = 1 }, {}]\n'),
     "energy.slabs[0].price", "is not used by tou mode matrix"),
    (matrix('[{ name = "a", prices = [1] }, { name = "b", prices = [1] }]', ""),
     "tou.mode", "[tariff.energy] is missing"),
    ('[tariff.energy]\nslabs = [{ upto = 100, price = 1 }, { price = 2 }]\n[tariff.tou]\n'
     'mode = "split_total"\nperiods = [{ name = "a", prices = [1, 2] }, { name = "b" }]\n' + ALL_DAY,
     "tou.periods[0].prices", "only used by tou mode matrix"),
])
def test_bad_matrices_are_refused_naming_the_field(body, field, words):
    reject_in_version(body, field, words)


def test_a_package_reads_exactly():
    text = HEAD + "[tariff.package]\nfree = 5\nblock = 2.5\nprice = 10.05\n"
    (tariff,) = tariffs_from_toml(text, where="t.toml").values()
    assert tariff.versions[0].package == Package(Decimal(5), Decimal("2.5"), Decimal("10.05"))


@pytest.mark.parametrize("body, field, words", [
    ("[tariff.package]\nfree = 5\nprice = 10\n", "package.block", "is missing"),
    ("[tariff.package]\nblock = 2\n", "package.price", "is missing"),
    ("[tariff.package]\nblock = 0\nprice = 10\n", "package.block", "must be positive"),
    ("[tariff.package]\nblock = 2\nfree = -1\nprice = 10\n", "package.free", "must not be negative"),
    ("[tariff.package]\nblock = 2\nprice = 1e13\n", "package.price", "below 10^12"),
    ("[tariff.package]\nblock = 2\nprice = 1\nsize = 3\n", "package.size", "unknown key"),
    ("[tariff.package]\nblock = 0.0000001\nprice = 1\n", "package.block", "more than 6 decimals"),
    ('package = "10 per 2"\n', "package", "must be a table"),
])
def test_bad_packages_are_refused_naming_the_field(body, field, words):
    reject_in_version(body, field, words)


def rate_water(toml: str, values: list[float], site: Site) -> list[tuple]:
    tariffs = tariffs_from_toml(toml, where="t.toml")
    registry = Registry([Meter("W-1", "A-1", "T")], [Account("A-1")])
    config = Config(site=site, tariffs=tariffs, registry=registry)
    ts = pa.array([dt.datetime(2026, 5, 1, h) for h in range(len(values))], pa.timestamp("s", tz="UTC"))
    table = pa.table({"meter_id": ["W-1"] * len(values), "ts": ts, "value": values})
    charges = rate(table, config=config, now=dt.datetime(2027, 1, 1)).charges.to_pylist()
    return [(c["component"], str(c["quantity"]), str(c["amount"])) for c in charges]


PACKAGE = HEAD + "[tariff.package]\nfree = 5\nblock = 2\nprice = 10\n"


@pytest.mark.parametrize("used, blocks", [(0, 0), (5, 0), (5.001, 1), (7, 1), (7.001, 2), (12.5, 4)])
def test_every_started_block_after_the_free_units_is_charged(used, blocks):
    assert rate_water(PACKAGE, [0.0, used], Site(time_zone="UTC")) == [
        ("package", f"{blocks}.000", f"{blocks * 10}.00")]


def test_a_block_finer_than_the_sites_quantities_is_refused_naming_the_field():
    text = HEAD + "[tariff.package]\nblock = 0.5\nprice = 10\n"
    with pytest.raises(TariffError) as info:
        rate_water(text, [0.0, 3.0], Site(time_zone="UTC", quantity_decimals=0))
    assert "package.block" in info.value.where


def test_a_package_beside_energy_and_a_tax_on_it():
    text = (HEAD + '[[tariff.taxes]]\nname = "vat"\npercent = 10\non = ["package"]\n'
            '[tariff.package]\nblock = 10\nprice = 3\n[tariff.energy]\nslabs = [{ price = 1 }]\n')
    assert rate_water(text, [0.0, 25.0], Site(time_zone="UTC")) == [
        ("energy", "25.000", "25.00"), ("package", "3.000", "9.00"), ("tax:vat", "None", "0.90")]


def test_an_export_tariff_reads_its_price_and_credits_the_register():
    text = HEAD + "fixed_charge = 1\n[tariff.export]\nprice = 0.085\n"
    (tariff,) = tariffs_from_toml(text, where="t.toml").values()
    assert tariff.versions[0].export_price == Decimal("0.085")
    # 123.4 kWh × 0.085 = 10.489 → a credit of 10.49
    assert rate_water(text, [1000.0, 1123.4], Site(time_zone="UTC")) == [
        ("export", "123.400", "-10.49"), ("fixed_charge", "None", "1.00")]


@pytest.mark.parametrize("body, field, words", [
    ("[tariff.export]\n", "export.price", "is missing"),
    ("[tariff.export]\nprice = -0.1\n", "export.price", "must not be negative"),
    ("[tariff.export]\nprice = 0.1\nnet = true\n", "export.net", "unknown key"),
    ("[tariff.export]\nprice = 0.1\n" + TIERS.replace("{}", "{ price = 1 }").replace(
        "{ upto = 100 }", "{ upto = 100, price = 1 }").replace("{ upto = 300 }", "{ upto = 300, price = 1 }"),
     "export", "has no energy"),
    ("[tariff.export]\nprice = 0.1\n[tariff.package]\nblock = 1\nprice = 1\n", "export", "has no package"),
    ('export = 0.1\n', "export", "must be a table"),
])
def test_bad_export_tariffs_are_refused_naming_the_field(body, field, words):
    reject_in_version(body, field, words)
