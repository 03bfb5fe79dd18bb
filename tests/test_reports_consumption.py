"""Consumption analytics on the demo society, rated for real: a flat whose
electricity use is made four times its own is the tower's outlier, three
months give the month-over-month change and the own-months rule, the
shared areas' meters are found, and the CLI exports and refuses."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction
from statistics import median

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.cli.commands import main
from rating.cli.demo import SOCIETY_ACCOUNT, generate_demo
from rating.config.loader import load_config
from rating.engine import rate
from rating.reports import consumption, usage

BOOSTED = "A-0103"  # not the flat whose old meter rolls over


def boosted(readings: pa.Table, meter: str, factor: int) -> pa.Table:
    """The meter's register advancing `factor` times as fast from its first reading."""
    mine = pc.equal(readings["meter_id"].cast(pa.string()), meter)
    first = readings.filter(mine).sort_by("ts")["value"][0].as_py()
    value = pc.if_else(mine, pc.add(pc.multiply(pc.subtract(readings["value"], first), factor), first),
                       readings["value"])
    return readings.set_column(readings.schema.get_field_index("value"), "value", value)


@pytest.fixture(scope="module")
def months(tmp_path_factory):
    """Three months of a one-tower society (12 flats); in July one flat uses four times more."""
    config = charges = anomalies = None
    files, results = [], []
    for number in (5, 6, 7):
        society = generate_demo(tmp_path_factory.mktemp(f"m{number}"), towers=1, floors=3, flats_per_floor=4,
                                seed=5, month=(2025, number))
        if number == 7:
            pq.write_table(boosted(pq.read_table(society.readings_file), f"E-{BOOSTED}", 4),
                           society.readings_file)
        config = load_config(society.site_file)
        results.append(rate(str(society.readings_file), config=config))
        files.append(society)
    charges = pa.concat_tables([r.charges for r in results])
    anomalies = pa.concat_tables([r.anomalies for r in results])
    return files, config, results, charges, anomalies


def test_metered_quantities_are_what_the_meters_measured_whatever_the_groups_did(months):
    _, _, results, charges, _ = months
    measured: dict = defaultdict(Decimal)
    for r in results:
        for row in r.consumption.to_pylist():
            measured[(row["account_id"], row["meter_id"], consumption._month(row["period_start"]))] += \
                row["quantity"]
    got = consumption.metered(charges)
    assert got == {k: v for k, v in measured.items() if k in got}
    # the netted master meter and the quantity shares cancel out: each meter is there once, as measured
    assert set(got) == {k for k, v in measured.items()} and got[(SOCIETY_ACCOUNT, "E-COMMON", "2025-07")] > 0


def test_the_boosted_flat_is_the_towers_and_its_own_outlier_and_its_change_is_shown(months):
    _, config, _, charges, anomalies = months
    table = usage.units(charges, anomalies, config)
    rows = {(r["account_id"], r["utility"], r["month"]): r for r in table.to_pylist()}
    july = rows[(BOOSTED, "kWh", "2025-07")]
    june = rows[(BOOSTED, "kWh", "2025-06")]
    assert july["tower"] == "A" and july["area"] == "unit"
    assert july["tower_outlier"] and july["own_outlier"]
    electricity = [r for r in rows.values() if r["utility"] == "kWh" and r["month"] == "2025-07"
                   and r["tower"] is not None]
    assert max(electricity, key=lambda r: r["tower_score"])["account_id"] == BOOSTED
    assert july["change"] == july["quantity"] - june["quantity"] > 0
    assert july["change_ratio"] == (july["change"] / june["quantity"]).quantize(Decimal("0.0001"))
    assert rows[(BOOSTED, "kWh", "2025-05")]["change"] is None  # no month before
    assert not rows[(BOOSTED, "kWh", "2025-06")]["own_outlier"]
    society = rows[(SOCIETY_ACCOUNT, "kWh", "2025-07")]
    assert society["area"] == "common" and society["tower"] is None and society["tower_score"] is None
    # anomalies: every anomaly of a known meter lands on its unit, utility and month
    known = {m.meter_id for m in config.registry.meters}
    counted = sum(v for v in table["anomalies"].to_pylist())
    assert counted == sum(1 for m in anomalies["meter_id"].to_pylist() if m in known) > 0


def test_towers_and_common_areas_sum_the_units_and_the_shared_meters(months):
    _, config, _, charges, anomalies = months
    units = usage.units(charges, anomalies, config)
    towers = usage.towers(units, config.site.quantity_decimals).to_pylist()
    assert {(r["tower"], r["utility"]) for r in towers} == {("A", "kWh"), ("A", "m3")}
    for r in towers:
        mine = [u for u in units.to_pylist() if u["tower"] == r["tower"] and u["utility"] == r["utility"]
                and u["month"] == r["month"]]
        assert r["units"] == len(mine) == 12 and r["quantity"] == sum(u["quantity"] for u in mine)
    july = next(r for r in towers if r["utility"] == "kWh" and r["month"] == "2025-07")
    assert july["outliers"] >= 1 and july["change"] > 0
    common = usage.common_areas(charges, config).to_pylist()
    assert {(r["group_id"], r["meter_id"]) for r in common} == {("common-areas", "E-COMMON"),
                                                                ("lift-A", "E-LIFT-A")}
    assert all(r["account_id"] == SOCIETY_ACCOUNT and r["utility"] == "kWh" for r in common)
    assert [r["month"] for r in common if r["meter_id"] == "E-LIFT-A"] == ["2025-05", "2025-06", "2025-07"]


def test_a_tower_pattern_regroups_the_units_and_a_bad_one_is_refused(months):
    _, config, _, charges, anomalies = months
    floors = usage.units(charges, anomalies, config, tower_pattern=r"(?<=-)\d\d")  # floor as the "tower"
    assert set(floors["tower"].to_pylist()) == {"01", "02", "03", None}
    from rating.errors import InputError

    with pytest.raises(InputError, match="tower-pattern"):
        consumption.tower_rule("(")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=30))
def test_the_mad_rule_equals_its_definition_in_fractions(values):
    centre = median(Fraction(v) for v in values)
    mad = median(abs(v - centre) for v in values)
    for v, (score, outlier) in zip(values, consumption.mad_scores(values), strict=True):
        if mad == 0:
            assert score is None and not outlier
        else:
            assert outlier == (abs(v - centre) > Fraction(7, 2) * mad)
            assert abs(Fraction(score) - (v - centre) / mad) <= Fraction(1, 200)


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_rates_the_readings_and_exports_in_three_formats(months, tmp_path, capsys):
    files, config, results, _, _ = months
    site, readings = files[-1].site_file, files[-1].readings_file
    expected = usage.towers(usage.units(results[-1].charges, results[-1].anomalies, config), 3)
    code, out, _ = cli(capsys, "report", "consumption", "--site", site, readings)
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["account_id", "tower", "area", "utility", "month"]
    assert out.splitlines()[-1].startswith("25 unit-months") and BOOSTED in out.splitlines()[-1]
    for suffix in ("csv", "xlsx", "parquet"):
        target = tmp_path / f"usage.{suffix}"
        code, out, _ = cli(capsys, "report", "consumption", "--site", site, readings, "--by", "tower",
                           "--out", target)
        assert code == 0 and out.startswith(f"wrote 2 rows to {target}")
        if suffix == "csv":
            with target.open() as f:
                got = [r["quantity"] for r in csv.DictReader(f)]
        elif suffix == "xlsx":
            got = [r[4] for r in openpyxl.load_workbook(target).active.iter_rows(min_row=2, values_only=True)]
        else:
            got = pq.read_table(target)["quantity"].to_pylist()
        assert [Decimal(str(q)) for q in got] == expected["quantity"].to_pylist()


@pytest.mark.parametrize(("args", "message"), [
    (["--tower-pattern", "("], "rating: error: --tower-pattern: not a regular expression"),
    (["--out", "usage.txt"], "rating: error: --out: write a report as .csv, .xlsx, .parquet"),
])
def test_mistakes_are_named_and_nothing_is_written(months, tmp_path, capsys, args, message):
    files = months[0]
    code, _, err = cli(capsys, "report", "consumption", "--site", files[0].site_file, files[0].readings_file,
                       *args)
    assert code == 2 and err.startswith(message) and "Traceback" not in err
    assert not (tmp_path / "usage.txt").exists()


def test_an_unknown_view_no_readings_and_a_damaged_file(months, tmp_path, capsys):
    site = months[0][0].site_file
    for args, message in ((["x.parquet", "--by", "floor"], "invalid choice: 'floor'"),
                          ([], "the following arguments are required: READINGS")):
        with pytest.raises(SystemExit):
            main(["report", "consumption", "--site", str(site), *args])
        assert message in capsys.readouterr().err
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    code, _, err = cli(capsys, "report", "consumption", "--site", site, bad)
    assert code == 2 and "bad.parquet" in err and "Traceback" not in err
