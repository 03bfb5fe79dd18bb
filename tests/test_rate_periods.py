"""rate() and `rating rate` given the billing periods to charge, and part
periods (docs/semantics.md "Asked periods", docs/tariffs.md "Part periods")."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from rating.cli.commands import main
from rating.config.loader import Config, load_config
from rating.config.tariff_file import tariffs_from_toml
from rating.engine import rate
from rating.errors import InputError, TariffError
from rating.model.months import MONTHS_MAX, months_of, parse_months
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Cycle, Site
from rating.reference.charges import RefReading, reference_rate
from tests.doc_examples import run_examples

SITE = Site(time_zone="Asia/Kolkata")
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
TARIFFS = """
[[tariff]]
id = "ELEC"
effective_from = 2025-01-01
fixed_charge = 60
minimum_charge = 100
[tariff.energy]
slabs = [{ upto = 100, price = 5 }, { price = 7 }]

[[tariff]]
id = "MAINT"
effective_from = 2025-01-01
area_charge = 3
fees = [{ name = "sinking_fund", amount = 400 }]

[[tariff]]
id = "WHOLE"
effective_from = 2025-01-01
prorate = false
fixed_charge = 60
[tariff.energy]
limit_basis = "per_day"
slabs = [{ upto = 2, price = 5 }, { price = 7 }]

[[tariff]]
id = "DAILY"
effective_from = 2025-01-01
[tariff.energy]
limit_basis = "per_day"
slabs = [{ upto = 2, price = 5 }, { price = 7 }]
"""


def config(meters: list[Meter], accounts: list[Account], site: Site = SITE) -> Config:
    tariffs = tariffs_from_toml(TARIFFS, where="t")
    return Config(site=site, registry=Registry(meters, accounts), tariffs=tariffs)


def readings(*rows) -> pa.Table:
    return pa.table({
        "meter_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([dt.datetime.fromisoformat(r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
        "value": pa.array([float(r[2]) for r in rows], pa.float64()),
    })


def lines(charges: pa.Table) -> dict[tuple, D]:
    """(account, meter, period start, component, slab) -> amount."""
    return {(r["account_id"], r["meter_id"], r["period_start"].isoformat(), r["component"], r["slab"]):
            r["amount"] for r in charges.to_pylist()}


def codes(anomalies: pa.Table) -> list[tuple[int, str]]:
    return list(zip(anomalies["row"].to_pylist(), anomalies["code"].to_pylist(), strict=True))


def reference(cfg: Config, table: pa.Table, months: str):
    rows = [RefReading(r["meter_id"], int(r["ts"].timestamp() * 10**6), D(str(r["value"])))
            for r in table.to_pylist()]
    return reference_rate(rows, ts_unit="us", site=cfg.site, registry=cfg.registry, tariffs=cfg.tariffs,
                          now=NOW, months=parse_months(months))


def as_lines(ref_lines) -> dict[tuple, D]:
    return {(x.account_id, x.meter_id, x.period_start.isoformat(), x.component, x.slab): x.amount
            for x in ref_lines}


# -- months ----------------------------------------------------------------------------------


def test_a_month_and_a_range_name_their_first_days():
    assert parse_months("2025-05") == (dt.date(2025, 5, 1),)
    assert parse_months("2025-11..2026-02") == tuple(dt.date(y, m, 1) for y, m in
                                                     ((2025, 11), (2025, 12), (2026, 1), (2026, 2)))
    assert months_of(["2025-05", dt.date(2025, 6, 1)]) == (dt.date(2025, 5, 1), dt.date(2025, 6, 1))


@pytest.mark.parametrize("text, message", [
    ("2025-13", "a period is a month such as 2025-05"),
    ("2025-00", "a period is a month such as 2025-05"),
    ("2025-5", "a period is a month such as 2025-05"),
    ("May", "a period is a month such as 2025-05"),
    ("2025-06..2025-04", "ends before it starts"),
    ("1899-12", "outside the years 1900-8999"),
    ("2000-01..2833-04", f"holds 10,000 months; at most {MONTHS_MAX}"),
])
def test_bad_periods_are_refused_naming_the_option(text, message):
    with pytest.raises(InputError, match=message) as error:
        parse_months(text)
    assert error.value.where == "--period"


def test_a_list_of_months_with_a_gap_is_refused():
    with pytest.raises(InputError, match="consecutive months"):
        months_of(["2025-01", "2025-03"])
    with pytest.raises(InputError, match="a month such as"):
        months_of([2025])
    with pytest.raises(InputError, match="a month text or a list of months"):
        months_of(202505)  # type: ignore[arg-type]


# -- periods without readings ------------------------------------------------------------------


def test_every_meter_and_account_is_charged_in_every_asked_period_readings_or_not():
    cfg = config([Meter("E-1", "A-1", "ELEC"), Meter("E-2", "A-2", "ELEC")],
                 [Account("A-1", area=D(70), tariff_id="MAINT"), Account("A-2"),
                  Account("A-3", area=D(50), tariff_id="MAINT")])  # A-3 has no meter at all
    table = readings(("E-1", "2025-05-01T00:00:00+05:30", 1000), ("E-1", "2025-05-20T00:00:00+05:30", 1150))
    got = lines(rate(table, config=cfg, now=NOW, periods="2025-04..2025-06").charges)
    for month in ("2025-04-01", "2025-06-01"):  # no readings: fixed charge, minimum, account lines
        assert got[("A-1", "E-1", month, "fixed_charge", None)] == D("60.00")
        assert got[("A-1", "E-1", month, "minimum_charge", None)] == D("40.00")
        assert got[("A-2", "E-2", month, "minimum_charge", None)] == D("40.00")
        assert got[("A-1", None, month, "area_charge", None)] == D("210.00")
        assert got[("A-3", None, month, "fee:sinking_fund", None)] == D("400.00")
    # May: 150 kWh = 100 x 5 + 50 x 7 = 850, + 60 fixed; above the minimum
    assert got[("A-1", "E-1", "2025-05-01", "energy", 2)] == D("350.00")
    assert ("A-1", "E-1", "2025-05-01", "minimum_charge", None) not in got
    assert got[("A-3", None, "2025-05-01", "area_charge", None)] == D("150.00")
    assert len({key[2] for key in got}) == 3


def test_without_periods_only_touched_periods_are_charged_as_before():
    cfg = config([Meter("E-1", "A-1", "ELEC"), Meter("E-2", "A-2", "ELEC")],
                 [Account("A-1", area=D(70), tariff_id="MAINT"), Account("A-2")])
    table = readings(("E-1", "2025-05-01T00:00:00+05:30", 1000), ("E-1", "2025-05-20T00:00:00+05:30", 1150))
    got = lines(rate(table, config=cfg, now=NOW).charges)
    assert {key[1] for key in got} == {"E-1", None} and {key[2] for key in got} == {"2025-05-01"}


def test_readings_outside_the_asked_periods_are_reported_and_still_close_intervals():
    cfg = config([Meter("E-1", "A-1", "ELEC")], [Account("A-1")])
    table = readings(("E-1", "2025-04-30T12:00:00+05:30", 900),   # before May
                     ("E-1", "2025-05-01T00:00:00+05:30", 1000),  # May's baseline; closes April's segment
                     ("E-1", "2025-05-31T12:00:00+05:30", 1100),
                     ("E-1", "2025-06-01T12:00:00+05:30", 1148))  # after May: its interval crosses the edge
    result = rate(table, config=cfg, now=NOW, periods="2025-05")
    assert codes(result.anomalies) == [(0, "outside_periods"), (3, "outside_periods")]
    assert set(result.anomalies["priced"].to_pylist()) == {False}
    got = lines(result.charges)
    # May holds 100 kWh, and 24 of the last 48 (12 of its 24 hours fall before June): 124 kWh
    assert got[("A-1", "E-1", "2025-05-01", "energy", 1)] == D("500.00")
    assert got[("A-1", "E-1", "2025-05-01", "energy", 2)] == D("168.00")
    assert {key[2] for key in got} == {"2025-05-01"}
    ref_lines, ref_anomalies = reference(cfg, table, "2025-05")
    assert as_lines(ref_lines) == got
    assert [(a.row, a.code) for a in ref_anomalies] == codes(result.anomalies)


def test_an_interval_reading_at_the_first_start_is_outside_a_register_reading_is_the_baseline():
    cfg = config([Meter("E-1", "A-1", "ELEC"), Meter("I-1", "A-1", "ELEC", mode="interval")],
                 [Account("A-1")])
    table = readings(("E-1", "2025-05-01T00:00:00+05:30", 10), ("I-1", "2025-05-01T00:00:00+05:30", 3),
                     ("I-1", "2025-05-01T00:15:00+05:30", 4), ("I-1", "2025-06-01T00:00:00+05:30", 5),
                     ("I-1", "2025-06-01T00:15:00+05:30", 6))
    result = rate(table, config=cfg, now=NOW, periods="2025-05")
    assert codes(result.anomalies) == [(1, "outside_periods"), (4, "outside_periods")]
    assert lines(result.charges)[("A-1", "I-1", "2025-05-01", "energy", 1)] == D("45.00")  # 4 + 5 kWh
    ref_lines, ref_anomalies = reference(cfg, table, "2025-05")
    assert [(a.row, a.code) for a in ref_anomalies] == codes(result.anomalies)
    assert as_lines(ref_lines) == lines(result.charges)


def test_periods_before_a_tariffs_first_version_are_an_error_naming_the_meter():
    cfg = config([Meter("E-1", "A-1", "ELEC")], [Account("A-1")])
    with pytest.raises(TariffError, match="has no version in force on 2024-12-01") as error:
        rate(readings(), config=cfg, now=NOW, periods="2024-12..2025-01")
    assert "meter 'E-1'" in error.value.where


def test_a_month_names_the_period_that_holds_its_first_day():
    cfg = config([Meter("E-1", "A-1", "ELEC")], [Account("A-1", cycle=Cycle(15))])
    got = lines(rate(readings(), config=cfg, now=NOW, periods="2025-05").charges)
    assert {key[2] for key in got} == {"2025-04-15"}  # 15 April - 14 May: the May bill's period


# -- part periods ------------------------------------------------------------------------------


def test_a_move_in_prorates_fixed_area_fees_minimum_and_slab_bounds():
    """Account held from 22 May (10 of 31 days); meter connected from 27 May (5 days)."""
    cfg = config([Meter("E-1", "A-1", "ELEC", active_from=dt.date(2025, 5, 27))],
                 [Account("A-1", area=D(70), tariff_id="MAINT", active_from=dt.date(2025, 5, 22))])
    table = readings(("E-1", "2025-05-27T00:00:00+05:30", 0), ("E-1", "2025-05-31T00:00:00+05:30", 30))
    got = lines(rate(table, config=cfg, now=NOW, periods="2025-05").charges)
    assert got[("A-1", "E-1", "2025-05-01", "fixed_charge", None)] == D("9.68")  # 60 x 5/31 = 9.677...
    # bound 100 x 5/31 = 16.129032... kWh, down to the 0.001 kWh resolution: 16.129;
    # 16.129 x 5 = 80.645 -> 80.64 (half-even), 13.871 x 7 = 97.097 -> 97.10
    assert got[("A-1", "E-1", "2025-05-01", "energy", 1)] == D("80.64")
    assert got[("A-1", "E-1", "2025-05-01", "energy", 2)] == D("97.10")
    # minimum 100 x 5/31 = 16.13 is covered by the lines
    assert ("A-1", "E-1", "2025-05-01", "minimum_charge", None) not in got
    assert got[("A-1", None, "2025-05-01", "area_charge", None)] == D("67.74")  # 210 x 10/31 = 67.741...
    assert got[("A-1", None, "2025-05-01", "fee:sinking_fund", None)] == D("129.03")  # 400 x 10/31
    assert as_lines(reference(cfg, table, "2025-05")[0]) == got


def test_a_move_out_prorates_and_the_periods_after_it_are_not_charged():
    cfg = config([Meter("E-1", "A-1", "ELEC")],
                 [Account("A-1", area=D(70), tariff_id="MAINT", active_until=dt.date(2025, 5, 10))])
    got = lines(rate(readings(), config=cfg, now=NOW, periods="2025-05..2025-06").charges)
    assert got[("A-1", "E-1", "2025-05-01", "minimum_charge", None)] == D("12.91")  # 100 x 10/31 - 19.35
    assert got[("A-1", "E-1", "2025-05-01", "fixed_charge", None)] == D("19.35")
    assert {key[2] for key in got} == {"2025-05-01"}


def test_per_day_bounds_count_the_active_days_exactly():
    cfg = config([Meter("D-1", "A-1", "DAILY", active_from=dt.date(2025, 6, 21))], [Account("A-1")])
    table = readings(("D-1", "2025-06-21T00:00:00+05:30", 0), ("D-1", "2025-06-30T00:00:00+05:30", 25))
    got = lines(rate(table, config=cfg, now=NOW, periods="2025-06").charges)
    assert got[("A-1", "D-1", "2025-06-01", "energy", 1)] == D("100.00")  # 2 kWh a day x 10 days
    assert got[("A-1", "D-1", "2025-06-01", "energy", 2)] == D("35.00")


def test_a_tariff_with_proration_off_charges_part_periods_whole():
    cfg = config([Meter("W-1", "A-1", "WHOLE", active_from=dt.date(2025, 6, 21))], [Account("A-1")])
    table = readings(("W-1", "2025-06-21T00:00:00+05:30", 0), ("W-1", "2025-06-30T00:00:00+05:30", 25))
    got = lines(rate(table, config=cfg, now=NOW, periods="2025-06").charges)
    assert got[("A-1", "W-1", "2025-06-01", "fixed_charge", None)] == D("60.00")
    assert got[("A-1", "W-1", "2025-06-01", "energy", 1)] == D("125.00")  # 25 kWh within 2 x 30 days
    assert as_lines(reference(cfg, table, "2025-06")[0]) == got


def test_part_periods_apply_without_asked_periods_too():
    cfg = config([Meter("E-1", "A-1", "ELEC", active_until=dt.date(2025, 5, 10))], [Account("A-1")])
    table = readings(("E-1", "2025-05-01T00:00:00+05:30", 0), ("E-1", "2025-05-10T00:00:00+05:30", 200))
    got = lines(rate(table, config=cfg, now=NOW).charges)
    assert got[("A-1", "E-1", "2025-05-01", "energy", 1)] == D("161.29")  # bound 100 x 10/31 -> 32.258 kWh
    assert got[("A-1", "E-1", "2025-05-01", "fixed_charge", None)] == D("19.35")


# -- the registry and the tariff file ------------------------------------------------------------


def write_site(folder: Path, meters: str, accounts: str = "account_id\nA-1\n") -> Path:
    (folder / "tariffs.toml").write_text(TARIFFS)
    (folder / "meters.csv").write_text(meters)
    (folder / "accounts.csv").write_text(accounts)
    (folder / "site.toml").write_text(
        '[site]\nname = "T"\ntime_zone = "Asia/Kolkata"\n[files]\n'
        'tariffs = "tariffs.toml"\nmeters = "meters.csv"\naccounts = "accounts.csv"\n')
    return folder / "site.toml"


def test_the_registry_reads_active_dates_of_meters_and_accounts(tmp_path):
    site = write_site(tmp_path,
                      "meter_id,account_id,tariff_id,active_from,active_until\nE-1,A-1,ELEC,2025-05-27,\n",
                      "account_id,active_until\nA-1,2025-08-31\n")
    registry = load_config(site).registry
    assert registry.meters[0].active_from == dt.date(2025, 5, 27) and registry.meters[0].active_until is None
    assert registry.accounts["A-1"].active_until == dt.date(2025, 8, 31)


@pytest.mark.parametrize("row, message", [
    ("E-1,A-1,ELEC,2025-06-01,2025-05-31", "row 1, column active_until: active_until 2025-05-31 is before"),
    ("E-1,A-1,ELEC,2025-13-01,", "row 1, column active_from: not a date (2025-05-10): '2025-13-01'"),
    ("E-1,A-1,ELEC,1 May 2025,", "row 1, column active_from: not a date"),
])
def test_bad_active_dates_name_the_file_row_and_column(tmp_path, row, message):
    site = write_site(tmp_path, f"meter_id,account_id,tariff_id,active_from,active_until\n{row}\n")
    with pytest.raises(InputError, match=re.escape(message)) as error:
        load_config(site)
    assert error.value.where.startswith(str(tmp_path / "meters.csv"))


def test_a_meter_built_in_code_whose_end_precedes_its_start_is_refused():
    meter = Meter("E-1", "A-1", "ELEC", active_from=dt.date(2025, 6, 1), active_until=dt.date(2025, 5, 1))
    with pytest.raises(InputError, match="meters row 1, column active_until: active_until 2025-05-01"):
        Registry([meter], [Account("A-1")])


def test_prorate_must_be_a_boolean():
    with pytest.raises(TariffError, match="prorate: must be true or false"):
        tariffs_from_toml('[[tariff]]\nid = "X"\neffective_from = 2025-01-01\nfixed_charge = 1\n'
                          'prorate = "no"\n', where="t.toml")


# -- the command line ------------------------------------------------------------------------------


def test_rate_period_on_the_command_line(tmp_path, capsys):
    site = write_site(tmp_path, "meter_id,account_id,tariff_id\nE-1,A-1,ELEC\n")
    (tmp_path / "r.csv").write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00+05:30,0\n")
    out = tmp_path / "out.csv"
    assert main(["rate", "--site", str(site), str(tmp_path / "r.csv"), "--period", "2025-05..2025-07",
                 "--charges", str(out), "--now", "2026-01-01T00:00:00"]) == 0
    charges = pacsv.read_csv(out)
    assert sorted(set(charges["period_start"].to_pylist())) == [dt.date(2025, m, 1) for m in (5, 6, 7)]
    assert "E-1" in capsys.readouterr().out


@pytest.mark.parametrize("period, message", [
    ("2025-13", "--period: a period is a month such as 2025-05"),
    ("2025-06..2025-04", "--period: the range '2025-06..2025-04' ends before it starts"),
    ("2000-01..2833-04", "--period: the range '2000-01..2833-04' holds 10,000 months"),
])
def test_bad_periods_on_the_command_line_are_one_line_and_write_nothing(tmp_path, capsys, period, message):
    site = write_site(tmp_path, "meter_id,account_id,tariff_id\nE-1,A-1,ELEC\n")
    (tmp_path / "r.csv").write_text("meter_id,ts,value\nE-1,2025-05-01T00:00:00+05:30,0\n")
    assert main(["rate", "--site", str(site), str(tmp_path / "r.csv"), "--period", period,
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_the_examples_of_the_tariffs_doc_run():
    failures, tried = run_examples(Path(__file__).resolve().parent.parent / "docs" / "tariffs.md")
    assert failures == 0 and tried["Part periods"] > 0
