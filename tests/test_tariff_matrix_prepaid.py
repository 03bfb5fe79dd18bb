"""The rate matrix, package pricing and export credits on the user's paths:
prepaid deductions (after − before, any split of the readings debits what
rating at once charges) and `rating rate`."""

from __future__ import annotations

from decimal import Decimal

import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.cli.commands import main
from rating.config.loader import load_config
from rating.engine import rate
from rating.prepaid.planning import DeductionPlanner
from rating.prepaid.sitedocs import SiteDocs
from tests.prepaid_site import readings, write_site
from tests.test_prepaid_planning import debits

TARIFFS = """\
[[tariff]]
id = "ELEC"
unit = "kWh"
effective_from = 2024-01-01

[tariff.energy]
slabs = [{ upto = 2 }, { upto = 5 }, {}]

[tariff.tou]
mode = "matrix"
periods = [{ name = "day", prices = [4.50, 6.25, 9.80] }, { name = "night", prices = [2.10, 3.35, 5.05] }]

[[tariff.tou.schedules]]
spans = { night = ["00:00-06:00", "22:00-24:00"], day = ["06:00-22:00"] }

[[tariff]]
id = "WATER"
unit = "m3"
effective_from = 2024-01-01

[tariff.package]
free = 0.1
block = 0.05
price = 3.75

[[tariff]]
id = "MAINT"
effective_from = 2024-01-01
fixed_charge = 500

[[tariff]]
id = "EXPORT"
unit = "kWh"
effective_from = 2024-01-01

[tariff.export]
price = 3.10
"""


def site_with_matrix(folder):
    """The prepaid site on these tariffs; each flat's water meter W-... becomes an
    export register (a rooftop panel's) credited to its electricity wallet."""
    site = write_site(folder, flats=3)
    (site.parent / "tariffs.toml").write_text(TARIFFS, encoding="utf-8")
    meters = (site.parent / "meters.csv").read_text(encoding="utf-8")
    (site.parent / "meters.csv").write_text(
        meters.replace("WATER,register,water", "EXPORT,register,electricity"), encoding="utf-8")
    return site


def water_site(folder):
    site = write_site(folder, flats=3)
    (site.parent / "tariffs.toml").write_text(TARIFFS, encoding="utf-8")
    return site


@settings(max_examples=20)
@given(cuts=st.lists(st.integers(1, 143), max_size=5, unique=True))
def test_any_split_of_the_readings_debits_what_rating_at_once_charges(tmp_path_factory, cuts):
    site = water_site(tmp_path_factory.mktemp("site"))
    table = readings(3, 24, every_min=60)  # 144 readings over a day and night
    config, policy = SiteDocs.from_site_file(site).build()
    planner = DeductionPlanner(config, policy)
    bounds = [0, *sorted(cuts), table.num_rows]
    plans = [planner.plan(table.slice(lo, hi - lo)) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    split = debits(plans)
    charges = rate(table, config=config).charges.to_pylist()
    wallets = {"ELEC": "electricity", "WATER": "water", "MAINT": "maintenance"}
    whole: dict = {}
    for line in charges:
        key = (line["account_id"], wallets[line["tariff_id"]])
        whole[key] = whole.get(key, 0) + int(line["amount"] * 100)
    assert split == {k: v for k, v in whole.items() if v}
    components = {(c["tariff_id"], c["component"], c["tou_period"]) for c in charges}
    assert {("ELEC", "energy", "day"), ("ELEC", "energy", "night"), ("WATER", "package", None)} <= components


def test_rating_rate_prices_a_matrix_and_a_package_from_the_site_files(tmp_path, capsys):
    site = water_site(tmp_path)
    pq.write_table(readings(3, 24, every_min=60), tmp_path / "readings.parquet")
    argv = ["rate", "--site", str(site), str(tmp_path / "readings.parquet"), "--out", str(tmp_path / "out"),
            "--now", "2026-01-01T00:00:00Z"]
    assert main(argv) == 0, capsys.readouterr().err
    charges = pq.read_table(tmp_path / "out" / "charges.parquet").to_pylist()
    expected = rate(readings(3, 24, every_min=60), config=load_config(site)).charges.to_pylist()
    assert sorted(map(str, charges)) == sorted(map(str, expected))
    water = [c for c in charges if c["component"] == "package"]
    assert water and all(c["unit_price"] == Decimal("3.75") for c in water)


@settings(max_examples=10)
@given(cuts=st.lists(st.integers(1, 143), max_size=4, unique=True))
def test_an_export_register_credits_its_wallet_batch_by_batch(tmp_path_factory, cuts):
    site = site_with_matrix(tmp_path_factory.mktemp("site"))
    table = readings(3, 24, every_min=60)
    config, policy = SiteDocs.from_site_file(site).build()
    planner = DeductionPlanner(config, policy)
    bounds = [0, *sorted(cuts), table.num_rows]
    plans = [planner.plan(table.slice(lo, hi - lo)) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    charges = rate(table, config=config).charges.to_pylist()
    exported = [c for c in charges if c["component"] == "export"]
    assert exported and all(c["amount"] < 0 for c in exported)
    whole: dict = {}
    for line in charges:
        key = (line["account_id"], "maintenance" if line["tariff_id"] == "MAINT" else "electricity")
        whole[key] = whole.get(key, 0) + int(line["amount"] * 100)
    assert debits(plans) == {k: v for k, v in whole.items() if v}


def test_a_batch_of_export_readings_alone_credits_the_wallets(tmp_path):
    site = site_with_matrix(tmp_path)
    table = readings(3, 24, every_min=60)
    exports = pc.starts_with(table.column("meter_id"), "W-")
    last = pc.equal(table.column("ts"), pc.max(table.column("ts")))
    final_exports = pc.and_(exports, last)
    config, policy = SiteDocs.from_site_file(site).build()
    planner = DeductionPlanner(config, policy)
    planner.plan(table.filter(pc.invert(final_exports)))
    plan = planner.plan(table.filter(final_exports))
    assert set(plan.entries.wallets) == {"electricity"}
    assert (plan.entries.changes_minor > 0).all() and len(plan.entries) > 0
