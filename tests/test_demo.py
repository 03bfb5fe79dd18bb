"""The demo society: deterministic, realistic enough, and its charges add up."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating.cli import main
from rating.config import load_config
from rating.demo import SOCIETY_ACCOUNT, UNKNOWN_METER, generate_demo
from rating.engine import rate
from rating.summary import account_totals, render_summary


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    society = generate_demo(folder, towers=2, floors=3, flats_per_floor=2, seed=11)
    config = load_config(society.site_file)
    result = rate(str(society.readings_file), config=config)
    return society, config, result


def test_generates_a_complete_site(small):
    society, config, _ = small
    assert {p.name for p in society.folder.iterdir()} == {
        "site.toml", "tariffs.toml", "billing.toml", "meters.csv", "accounts.csv", "groups.csv",
        "readings.parquet"
    }
    assert society.flats == 12
    assert len(config.registry) == society.meters == 12 * 2 + 1 + 2  # + master + lift per tower
    assert config.site.currency == "INR" and config.site.time_zone == "Asia/Kolkata"
    assert sorted(config.tariffs) == ["COMMON-LT", "MAINT", "MAINT-P1", "MAINT-P2", "RES-LT1",
                                      "WATER-DOM"]
    assert len(config.tariffs["RES-LT1"].versions) == 2
    common = [m for m in config.registry.meters if m.account_id == SOCIETY_ACCOUNT]
    assert {m.meter_id for m in common} == {"E-COMMON", "E-LIFT-A", "E-LIFT-B"}
    assert next(m for m in common if m.meter_id == "E-COMMON").multiplier == 20
    readings = pq.read_table(society.readings_file)
    # Every meter, every 15 minutes of May 2025 (both midnights), a duplicate, 6 unknown reads.
    assert readings.num_rows == society.readings == society.meters * (31 * 96 + 1) + 1 + 6


def test_the_same_seed_gives_the_same_society(tmp_path):
    a = generate_demo(tmp_path / "a", towers=1, floors=2, flats_per_floor=2, seed=5)
    b = generate_demo(tmp_path / "b", towers=1, floors=2, flats_per_floor=2, seed=5)
    c = generate_demo(tmp_path / "c", towers=1, floors=2, flats_per_floor=2, seed=6)
    for name in ("site.toml", "tariffs.toml", "meters.csv", "accounts.csv"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()
    assert pq.read_table(a.readings_file).equals(pq.read_table(b.readings_file))
    assert not pq.read_table(a.readings_file).equals(pq.read_table(c.readings_file))


def test_every_injected_fault_is_reported_on_its_meter(small):
    society, _, result = small
    found = {(row["code"], row["meter_id"]) for row in result.anomalies.to_pylist()}
    for code, meter_id in society.faults.items():
        assert (code, meter_id) in found, (code, meter_id)
    codes = result.anomalies.column("code").to_pylist()
    assert codes.count("unknown_meter") == 6 and society.faults["unknown_meter"] == UNKNOWN_METER
    assert sorted(set(codes)) == ["duplicate", "negative_delta", "null_value", "out_of_order",
                                  "rollover", "spike", "unknown_meter"]


def test_consumption_is_plausible_and_vacant_flats_use_nothing(small):
    society, _, result = small
    consumption = result.consumption
    per_meter: dict[str, Decimal] = {}
    for row in consumption.select(["meter_id", "quantity"]).to_pylist():
        per_meter[row["meter_id"]] = per_meter.get(row["meter_id"], Decimal(0)) + row["quantity"]
    for account in society.vacant:
        assert per_meter.get(f"E-{account}", Decimal(0)) == 0
        assert per_meter.get(f"W-{account}", Decimal(0)) == 0
    occupied = [q for m, q in per_meter.items()
                if m.startswith("E-") and m[2:] not in society.vacant and m[2] != "L" and
                m != "E-COMMON"]
    assert all(Decimal(80) < q < Decimal(1500) for q in occupied), occupied  # kWh a month
    water = [q for m, q in per_meter.items() if m.startswith("W-") and m[2:] not in society.vacant]
    assert all(Decimal(5) < q < Decimal(60) for q in water), water  # m3 a month


def test_every_account_is_charged_for_may(small):
    society, config, result = small
    charges = result.charges
    assert set(charges.column("account_id").to_pylist()) == set(config.registry.accounts)
    assert set(charges.column("period_start").to_pylist()) == {dt.date(2025, 5, 1)}
    maintenance = charges.filter(pc.equal(charges.column("component"), "area_charge"))
    assert maintenance.num_rows == society.flats
    assert pc.all(pc.is_null(maintenance.column("meter_id"))).as_py()


def parse_summary_totals(text: str) -> dict[str, Decimal]:
    totals, account = {}, None
    lines = text.splitlines()
    for previous, line in zip([""] + lines, lines, strict=False):
        if previous == "" and re.match(r"^\S+  ", line) and not line.startswith("Site total"):
            account = line.split()[0]
        elif line.startswith("  Total") and account is not None:
            totals[account] = Decimal(line.split()[-1].replace(",", ""))
    return totals


def test_summary_totals_equal_the_sum_of_each_accounts_lines(small):
    _, config, result = small
    text = render_summary(result.charges, result.anomalies, config)
    printed = parse_summary_totals(text)
    by_lines: dict[str, Decimal] = {}
    for row in result.charges.select(["account_id", "amount"]).to_pylist():
        by_lines[row["account_id"]] = by_lines.get(row["account_id"], Decimal(0)) + row["amount"]
    assert printed == by_lines == account_totals(result.charges)
    site_total = re.search(r"Site total \(\d+ accounts\): INR ([\d,.]+)", text).group(1)
    assert Decimal(site_total.replace(",", "")) == sum(by_lines.values())


def test_rating_demo_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "society"
    code = main(["demo", "--out", str(out), "--towers", "1", "--accounts", "1000"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "32 flats" in captured.err
    charges = pq.read_table(out / "charges.parquet")
    assert (out / "anomalies.parquet").exists() and (out / "readings.parquet").exists()
    assert parse_summary_totals(captured.out) == account_totals(charges)
    assert len(parse_summary_totals(captured.out)) == 33  # 32 flats and the society
    # The kept folder is a ready-made site for `rating rate`.
    code = main(["rate", "--site", str(out / "site.toml"), str(out / "readings.parquet"),
                 "--charges", str(tmp_path / "again.parquet"), "--no-summary"])
    assert code == 0
    assert pq.read_table(tmp_path / "again.parquet").equals(charges)


def test_rating_demo_without_out_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert main(["demo", "--towers", "1"]) == 0
    captured = capsys.readouterr()
    assert "more accounts, totalling" in captured.out
    assert list(tmp_path.iterdir()) == []


def test_bad_demo_size_is_exit_2(capsys):
    assert main(["demo", "--towers", "0"]) == 2
    assert capsys.readouterr().err == "rating: error: --towers must be 1..26\n"


def test_lift_bills_are_shared_exactly_over_each_towers_flats(small):
    _, _, result = small
    shared = [line for line in result.charges.to_pylist() if line["component"] == "shared_area"]
    for tower in ("A", "B"):
        lines = [line for line in shared if line["group_id"] == f"lift-{tower}"]
        shares = [line["amount"] for line in lines if line["role"] == "share"]
        sources = [line["amount"] for line in lines if line["role"] == "source"]
        assert len(shares) == 6 and len(sources) == 1
        assert sum(shares) == -sources[0] > 0
