import datetime as dt
from decimal import Decimal as D

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from rating.config.loader import Config, load_config
from rating.engine import Rater, rate
from rating.errors import AmountOverflowError, InputError
from rating.model.groups import load_groups
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Site
from rating.model.tariff import Slab, SlabSet, Tariff, TariffVersion
from tests.test_config import write_site

SITE = Site(time_zone="Asia/Kolkata")
ENERGY = Tariff("E", "energy", (TariffVersion(
    "E", dt.date(2020, 1, 1),
    energy=SlabSet("graduated", "period", (Slab(D(100), D("3")), Slab(None, D("5")))),
    fixed_charge=D("50")),))
MAINTENANCE = Tariff("M", "maintenance", (TariffVersion(
    "M", dt.date(2020, 1, 1), area_charge_rate=D("2.50"), fees=(("parking", D("500")),)),))


def config() -> Config:
    registry = Registry(
        [Meter("e1", "A-101", "E"), Meter("w1", "A-101", "E")],
        [Account("A-101", area=D("100"), tariff_id="M")],
    )
    return Config(site=SITE, registry=registry, tariffs={"E": ENERGY, "M": MAINTENANCE})


def readings(*rows) -> pa.Table:
    return pa.table({
        "meter_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([dt.datetime.fromisoformat(r[1]) for r in rows], pa.timestamp("us", tz="UTC")),
        "value": pa.array([r[2] for r in rows], pa.float64()),
    })


def totals(charges: pa.Table) -> dict[tuple, D]:
    out: dict[tuple, D] = {}
    for line in charges.to_pylist():
        key = (line["meter_id"], line["component"], line["slab"])
        out[key] = out.get(key, D(0)) + line["amount"]
    return out


def test_one_month_of_one_meter_prices_slabs_fixed_and_account_lines():
    result = rate(readings(("e1", "2026-11-02T00:00:00+05:30", 1000.0),
                           ("e1", "2026-11-20T00:00:00+05:30", 1150.5)), config=config())
    assert totals(result.charges) == {
        ("e1", "energy", 1): D("300.00"), ("e1", "energy", 2): D("252.50"),
        ("e1", "fixed_charge", None): D("50.00"),
        (None, "area_charge", None): D("250.00"), (None, "fee:parking", None): D("500.00"),
    }


def test_account_lines_are_charged_once_when_a_second_meter_appears_in_a_later_batch():
    rater = Rater(config())
    first = rater.feed(readings(("e1", "2026-11-02T00:00:00+05:30", 0.0),
                                ("e1", "2026-11-03T00:00:00+05:30", 10.0)))
    second = rater.feed(readings(("w1", "2026-11-02T00:00:00+05:30", 0.0),
                                 ("w1", "2026-11-03T00:00:00+05:30", 4.0)))
    assert totals(first.charges)[(None, "fee:parking", None)] == D("500.00")
    assert (None, "fee:parking", None) not in totals(second.charges)
    assert totals(second.charges) == {
        ("w1", "energy", 1): D("12.00"), ("w1", "fixed_charge", None): D("50.00"),
    }


def test_a_failing_batch_changes_nothing():
    rater = Rater(config())
    rater.feed(readings(("e1", "2026-11-02T00:00:00+05:30", 0.0)))
    before = rater.snapshot()
    bad = pa.table({"meter_id": pa.array(["e1", None]),
                    "ts": pa.array([dt.datetime(2026, 11, 3), dt.datetime(2026, 11, 4)], pa.timestamp("us")),
                    "value": pa.array([5.0, 6.0])})
    with pytest.raises(InputError, match="row 3"):
        rater.feed(bad)
    after = rater.snapshot()
    assert (after.meter_states == before.meter_states).all()  # by field: padding bytes are arbitrary
    assert after.rows_seen == before.rows_seen == 1
    assert rater.feed(readings(("e1", "2026-11-03T00:00:00+05:30", 5.0))).charges.num_rows > 0


def test_a_batch_failing_inside_the_kernel_puts_back_the_meters_it_moved():
    registry = Registry([Meter("e1", "A-101", "E"), Meter("big", "A-101", "E", multiplier=10**9)],
                        [Account("A-101")])
    rater = Rater(Config(site=SITE, registry=registry, tariffs={"E": ENERGY}))
    rater.feed(readings(("e1", "2026-11-02T00:00:00+05:30", 0.0), ("big", "2026-11-02T00:00:00+05:30", 0.0)))
    before = rater.snapshot()
    bad = readings(("e1", "2026-11-03T00:00:00+05:30", 7.0),  # moves e1 before the overflow
                   ("big", "2026-11-03T00:00:00+05:30", 10.0**10))  # 10^10 x 10^9 kWh: past int64
    with pytest.raises(AmountOverflowError, match="row 2"):
        rater.feed(bad)
    after = rater.snapshot()
    assert (after.meter_states == before.meter_states).all() and after.totals is before.totals
    assert totals(rater.feed(readings(("e1", "2026-11-03T00:00:00+05:30", 7.0))).charges) == {
        ("e1", "energy", 1): D("21.00"), ("e1", "fixed_charge", None): D("50.00")}


def test_a_multiplier_overflow_names_the_readings_file_row_and_the_meter(tmp_path):
    meters = "meter_id,account_id,tariff_id,multiplier\nE-1,A-1,ELEC,1\nE-2,A-2,ELEC,2147483647\n"
    config = load_config(write_site(tmp_path, meters=meters))
    path = tmp_path / "may.csv"
    path.write_text("meter_id,ts,value\nE-2,2025-05-01T00:00:00,0\nE-1,2025-05-01T00:00:00,0\n"
                    "E-2,2025-05-02T00:00:00,10000000000000\n")  # 10^13 kWh x (2^31 - 1): past int64
    with pytest.raises(AmountOverflowError) as error:
        rate(path, config=config)
    assert error.value.where == f"{path} row 3, column value"
    assert error.value.message.startswith(f"{tmp_path / 'registry' / 'meters.csv'} row 2 (meter 'E-2'): "
                                          "its delta times the multiplier exceeds")
    assert error.value.details == {"file": str(path), "row": "3", "column": "value", "meter": "E-2"}


def test_readings_in_a_period_starting_before_every_tariff_version_are_ancient(tmp_path):
    site_file = write_site(tmp_path)
    tariffs = tmp_path / "t" / "elec.toml"
    tariffs.write_text(tariffs.read_text().replace("2025-01-01", "2025-01-05"))  # mid-month
    path = tmp_path / "january.csv"
    path.write_text("meter_id,ts,value\nE-1,2025-01-20T00:00:00,0\nE-2,2025-01-10T00:00:00,5\n")
    # the January period starts on the 1st, before the tariff's first version: nothing in it is priced
    result = rate(path, config=load_config(site_file), now=dt.datetime(2025, 2, 1, tzinfo=dt.UTC))
    assert result.charges.num_rows == 0
    assert result.anomalies.column("code").to_pylist() == ["ancient_reading"] * 2


def test_unknown_meters_are_reported_or_refused():
    table = readings(("e1", "2026-11-02T00:00:00+05:30", 0.0), ("zz", "2026-11-02T00:00:00+05:30", 1.0))
    reported = rate(table, config=config())
    assert reported.anomalies.column("code").to_pylist() == ["unknown_meter"]
    assert reported.anomalies.column("row").to_pylist() == [1]
    with pytest.raises(InputError, match="row 2: unknown meter 'zz'"):
        rate(table, config=config(), unknown_meters="error")


def test_errors_in_files_name_the_file_and_its_row(tmp_path):
    path = tmp_path / "november.csv"
    pacsv.write_csv(pa.table({"meter_id": ["e1", "e1"], "ts": ["2026-11-02T00:00:00Z", ""],
                              "value": ["1", "2"]}), path)
    with pytest.raises(InputError) as error:
        rate(str(path), config=config())
    assert "november.csv" in str(error.value) and "row 2" in str(error.value)


def test_snapshot_and_restore_replay_a_batch_identically():
    rater = Rater(config())
    rater.feed(readings(("e1", "2026-11-02T00:00:00+05:30", 0.0)))
    saved = rater.snapshot()
    batch = readings(("e1", "2026-11-05T00:00:00+05:30", 120.0))
    once = rater.feed(batch).charges
    rater.restore(saved)
    again = rater.feed(batch).charges
    assert once.equals(again)


def test_rate_applies_the_sites_groups_and_shares_add_up_to_the_source(tmp_path):
    groups = tmp_path / "groups.csv"
    groups.write_text("group_id,account_id,area,method,basis,common_meters\n"
                      "lift,A-101,100,area,cost,LIFT\nlift,A-102,50,,,\nlift,A-103,50,,,\n")
    registry = Registry(
        [Meter("LIFT", "SOC", "E"), Meter("e1", "A-101", "E")],
        [Account("SOC"), Account("A-101", area=D(100)), Account("A-102", area=D(50)),
         Account("A-103", area=D(50))],
    )
    site_config = Config(site=SITE, registry=registry, tariffs={"E": ENERGY}, groups=load_groups(groups))
    result = rate(readings(("LIFT", "2026-11-02T00:00:00+05:30", 0.0),
                           ("LIFT", "2026-11-03T00:00:00+05:30", 33.333),
                           ("e1", "2026-11-02T00:00:00+05:30", 0.0)), config=site_config)
    shared = [line for line in result.charges.to_pylist() if line["component"] == "shared_area"]
    shares = {line["account_id"]: line["amount"] for line in shared if line["role"] == "share"}
    source = [line["amount"] for line in shared if line["role"] == "source"]
    lift_bill = D("33.333") * 3 + 50  # slab 1 at 3.00 plus the fixed charge
    assert source == [-lift_bill.quantize(D("0.01"))]
    assert sum(shares.values()) == lift_bill.quantize(D("0.01"))
    assert shares == {"A-101": D("75.00"), "A-102": D("37.50"), "A-103": D("37.50")}
    assert result.apportionment is not None and result.apportionment.num_rows == 0


# ------------------------------------------------------------------ the reading window

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.timezone.utc)
US = 1_000_000


def us_of(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * US


def readings_us(*rows) -> pa.Table:
    """Like `readings`, with ts as microseconds since the epoch (any int64)."""
    return pa.table({
        "meter_id": pa.array([r[0] for r in rows], pa.string()),
        "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "value": pa.array([r[2] for r in rows], pa.float64()),
    })


def codes(result) -> list[tuple[int, str]]:
    return list(zip(result.anomalies["row"].to_pylist(), result.anomalies["code"].to_pylist(), strict=True))


def test_readings_dated_far_ahead_are_future_readings_found_fast_and_price_nothing():
    """One reading dated 3000-01-01 once built a timeline to it: 71,182 charge lines."""
    import time

    ordinary = [("e1", us_of("2026-11-02T00:00:00+05:30"), 1000.0),
                ("e1", us_of("2026-11-20T00:00:00+05:30"), 1150.5)]
    far = [("e1", us_of("3000-01-01T00:00:00+00:00"), 9e9), ("e1", 2**63 - 1, 1.0),
           ("e1", -(2**63), 1.0), ("e1", us_of("1899-12-31T23:59:59+00:00"), 1.0)]
    start = time.perf_counter()
    result = rate(readings_us(ordinary[0], *far, ordinary[1]), config=config(), now=NOW)
    elapsed = time.perf_counter() - start
    assert codes(result) == [(1, "future_reading"), (2, "future_reading"), (3, "ancient_reading"),
                             (4, "ancient_reading")]
    assert result.charges.equals(rate(readings_us(*ordinary), config=config(), now=NOW).charges)
    assert elapsed < 2.0  # ~0.01 s; the guard is coarse for a shared machine


def test_a_bad_date_never_becomes_the_meters_last_reading():
    rater = Rater(config())
    first = rater.feed(readings(("e1", "2026-11-02T00:00:00+05:30", 0.0),
                                ("e1", "2030-01-01T00:00:00+05:30", 99.0)), now=NOW)
    second = rater.feed(readings(("e1", "2026-11-03T00:00:00+05:30", 10.0)), now=NOW)
    assert first.anomalies["code"].to_pylist() == ["future_reading"]
    assert second.anomalies.num_rows == 0  # not out_of_order behind the 2030 reading
    assert totals(second.charges)[("e1", "energy", 1)] == D("30.00")


def test_the_future_bound_is_now_plus_the_sites_tolerance():
    latest = NOW + dt.timedelta(hours=24)
    start_us, latest_us = us_of("2026-11-02T00:00:00+05:30"), us_of(latest.isoformat())
    table = readings_us(("e1", start_us, 0.0), ("e1", latest_us, 1.0),
                        ("w1", start_us, 0.0), ("w1", latest_us + 1, 1.0))
    assert codes(rate(table, config=config(), now=NOW)) == [(3, "future_reading")]
    strict = Config(site=Site(time_zone="Asia/Kolkata", future_tolerance_hours=0),
                    registry=config().registry, tariffs=config().tariffs)
    assert codes(rate(table, config=strict, now=NOW)) == [(1, "future_reading"), (3, "future_reading")]
    assert codes(rate(table, config=config(), now=latest)) == []  # a later now accepts both


def later_tariff(tariff_id: str, effective_from: dt.date) -> Tariff:
    return Tariff(tariff_id, tariff_id, (TariffVersion(
        tariff_id, effective_from, energy=SlabSet("graduated", "period", (Slab(None, D("2")),))),))


def test_readings_before_the_first_period_a_tariff_prices_are_ancient_not_errors():
    """A tariff from 15 November is first in force for December (a period's
    version is the one in force on its first day); an interval meter's
    interval must start inside too."""
    registry = Registry([Meter("old", "A-1", "E"), Meter("new", "A-1", "N"),
                         Meter("iv", "A-1", "N", mode="interval", interval_minutes=15)], [Account("A-1")])
    tariffs = {"E": ENERGY, "N": later_tariff("N", dt.date(2026, 11, 15))}
    cfg = Config(site=SITE, registry=registry, tariffs=tariffs)
    table = readings(("old", "2026-11-01T00:00:00+05:30", 0.0), ("new", "2026-11-20T00:00:00+05:30", 0.0),
                     ("new", "2026-12-01T00:00:00+05:30", 5.0), ("iv", "2026-12-01T00:10:00+05:30", 1.0),
                     ("iv", "2026-12-01T00:15:00+05:30", 2.0), ("new", "2026-12-02T00:00:00+05:30", 7.0),
                     ("old", "2026-11-10T00:00:00+05:30", 40.0))
    result = rate(table, config=cfg, now=NOW + dt.timedelta(days=30))
    assert codes(result) == [(1, "ancient_reading"), (3, "ancient_reading")]
    assert totals(result.charges) == {
        ("new", "energy", 1): D("4.00"), ("iv", "energy", 1): D("4.00"),
        ("old", "energy", 1): D("120.00"), ("old", "fixed_charge", None): D("50.00"),
    }


def test_an_old_reading_of_one_tariff_does_not_stop_a_batch_holding_a_newer_tariff():
    """Each tariff's timeline starts at its own first priced period, not at the
    batch's earliest reading (which once asked the newer tariff for a version
    years before it existed)."""
    registry = Registry([Meter("old", "A-1", "E"), Meter("new", "A-1", "N")], [Account("A-1")])
    cfg = Config(site=SITE, registry=registry,
                 tariffs={"E": ENERGY, "N": later_tariff("N", dt.date(2026, 11, 1))})
    table = readings(("old", "2021-03-01T00:00:00+05:30", 0.0), ("old", "2021-03-02T00:00:00+05:30", 1.0),
                     ("new", "2026-11-02T00:00:00+05:30", 0.0), ("new", "2026-11-03T00:00:00+05:30", 3.0))
    assert totals(rate(table, config=cfg, now=NOW).charges) == {
        ("old", "energy", 1): D("3.00"), ("old", "fixed_charge", None): D("50.00"),
        ("new", "energy", 1): D("6.00"),
    }


def test_rate_without_now_reads_the_wall_clock():
    ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    table = readings_us(("e1", us_of("2026-11-02T00:00:00+05:30"), 0.0),
                        ("e1", us_of(ahead.isoformat()), 5.0))
    assert codes(rate(table, config=config())) == [(1, "future_reading")]
