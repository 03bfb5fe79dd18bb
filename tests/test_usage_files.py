"""Bad definitions and hostile inputs of the usage path are refused with one
error naming the file, the row or key and the field, and change nothing:
usage files, plates, parking events, instalment plans; and the command line."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from rating.errors import RatingError
from rating.model.site import Site
from rating.usage.instalments import plans_from_toml, schedule, schedule_reference
from rating.usage.parking import ParkingRater, rate_parking
from rating.usage.settings import load_usage_file
from tests.usage_site import PLATES_CSV, USAGE_TOML, events

ROOT = Path(__file__).resolve().parent.parent


def _site(tmp_path, usage=USAGE_TOML, plates=PLATES_CSV) -> Path:
    (tmp_path / "usage.toml").write_text(usage, encoding="utf-8")
    (tmp_path / "plates.csv").write_text(plates, encoding="utf-8")
    return tmp_path / "usage.toml"


@pytest.mark.parametrize(("old", "new", "where"), [
    ("step_minutes = 60", "step_minutes = 7", "parking.tariffs.resident.step_minutes"),
    ("step_minutes = 60", "step_minutes = 0", "parking.tariffs.resident.step_minutes"),
    ("free_minutes = 30", "free_minutes = -5", "parking.tariffs.resident.free_minutes"),
    ("free_minutes = 30", "free_minutes = 1440", "parking.tariffs.resident.free_minutes"),
    ("price = 20", "price = -20", "parking.tariffs.resident.price"),
    ("price = 20", "price = 1e7", "parking.tariffs.resident.price"),
    ("price = 20", 'price = "20"', "parking.tariffs.resident.price"),
    ("price = 20", "price = 20.0000001", "parking.tariffs.resident.price"),
    ("daily_cap = 100", "daily_cap = nan", "parking.tariffs.resident.daily_cap"),
    ("lost_ticket = 300\n", "", "parking.tariffs.resident.lost_ticket"),
    ('span = "22:00-24:00"', 'span = "22:00-06:00"', "parking.tariffs.resident.bands[0].span"),
    ('span = "22:00-24:00"', 'span = "05:00-24:00"', "parking.tariffs.resident.bands"),
    ("daily_cap = 100", "daily_cap = 100\nhourly = 3", "parking.tariffs.resident.hourly"),
    ('per = "kwh"', 'per = "litre"', "facilities.ev.per"),
    ('wallet = "facilities"\n\n[facilities.ev]', 'wallet = "Facilities!"\n\n[facilities.ev]',
     "facilities.gym.wallet"),
    ("days = 30", "days = 0", "parking.passes.monthly.days"),
    ("warn_days_before = 5", "warn_days_before = 1", "parking.passes.monthly.warn_days_before"),
    ('[site]\ntime_zone = "Asia/Kolkata"', '[site]\ntime_zone = "Mars/Olympus"', "[site].time_zone"),
    ('plates = "plates.csv"', 'plates = "missing.csv"', "missing.csv"),
])
def test_a_bad_usage_file_is_refused_naming_the_file_and_the_key(tmp_path, old, new, where):
    assert old in USAGE_TOML
    path = _site(tmp_path, USAGE_TOML.replace(old, new, 1))
    with pytest.raises(RatingError) as caught:
        load_usage_file(path)
    named = str(tmp_path / where) if where.endswith(".csv") else str(path)  # a missing file names itself
    assert named in str(caught.value) and where in str(caught.value), str(caught.value)


@pytest.mark.parametrize(("plates", "message"), [
    ("plate,kind,account_id\nKA01,resident,F0001\n", "tariff_id"),
    ("plate,kind,account_id,tariff_id\nKA01,resident,F0001,resident\nka-01,visitor,,visitor\n",
     "row 2, column plate: duplicate plate 'KA01' (first in row 1)"),
    ("plate,kind,account_id,tariff_id\nKA01,owner,F0001,resident\n", "row 1, column kind"),
    ("plate,kind,account_id,tariff_id\nKA01,resident,,resident\n", "row 1, column account_id"),
    ("plate,kind,account_id,tariff_id\nKA01,resident,F0001,gold\n", "row 1, column tariff_id"),
    ("plate,kind,account_id,tariff_id\n - ,resident,F0001,resident\n", "row 1, column plate"),
])
def test_a_bad_plates_file_is_refused_naming_row_and_column(tmp_path, plates, message):
    path = _site(tmp_path, plates=plates)
    with pytest.raises(RatingError) as caught:
        load_usage_file(path)
    assert "plates.csv" in str(caught.value) and message in str(caught.value), str(caught.value)


@pytest.fixture
def settings(tmp_path):
    return load_usage_file(_site(tmp_path))


@pytest.mark.parametrize(("table", "message"), [
    (pa.table({"plate": ["KA01AB1234"], "ts": pa.array([1], pa.timestamp("s"))}), "missing column 'event'"),
    (pa.table({"plate": ["KA01AB1234"], "ts": [1], "event": ["entry"]}), "ts has type int64"),
    (pa.table({"plate": [1234], "ts": pa.array([1], pa.timestamp("s")), "event": ["entry"]}),
     "plate has type int64"),
    (pa.table({"plate": ["KA01AB1234", None], "ts": pa.array([1, 2], pa.timestamp("s")),
               "event": ["entry", "exit"]}), "row 2, column plate: plate is empty"),
    (pa.table({"plate": ["KA01AB1234", "KA01AB1234"], "ts": pa.array([1, None], pa.timestamp("s")),
               "event": ["entry", "exit"]}), "row 2, column ts"),
    (pa.table({"plate": ["KA01AB1234"] * 2, "ts": pa.array([1, 2], pa.timestamp("s")),
               "event": ["entry", "leave"]}), "row 2, column event: event must be entry, exit, lost_ticket"),
])
def test_malformed_events_are_refused_naming_where_and_the_carried_stays_stay(settings, table, message):
    rater = ParkingRater(settings)
    rater.rate(events(("KA01AB1234", "2026-05-04 08:00", "entry")))
    carried = rater.carried
    with pytest.raises(RatingError) as caught:
        rater.rate(table, where="gate.csv")
    assert "gate.csv" in str(caught.value) and message in str(caught.value), str(caught.value)
    assert rater.carried is carried


def test_hostile_events_are_anomalies_never_charges(settings):
    result = rate_parking(events(
        ("KA01AB1234", "2026-05-04 10:00", "exit"),        # no entry
        ("KA01AB1234", "2026-05-04 11:00", "entry"),
        ("KA01AB1234", "2026-05-04 12:00", "entry"),       # double entry: the first is never charged
        ("KA01AB1234", "2026-05-04 11:30", "exit"),        # before its entry (a negative stay): out of order
        ("KA01AB1234", "2026-05-04 13:31", "exit"),        # the second stay: 1 h free 30, 2 started hours
        ("BOGUS-1", "2026-05-04 12:00", "entry"),
        ("KA05EF0002", "2025-01-01 00:00", "entry"),
        ("KA05EF0002", "2026-05-04 00:00", "exit"),        # over 400 days: never priced
    ), settings)
    codes = list(zip(result.anomalies.column("row").to_pylist(), result.anomalies.column("code").to_pylist(),
                     strict=True))
    assert codes == [(1, "exit_without_entry"), (2, "double_entry"), (4, "out_of_order"),
                     (6, "unknown_plate"), (8, "too_long")]
    assert result.sessions.column("amount_minor").to_pylist() == [4000]


def test_a_plate_is_matched_however_the_camera_spells_it(settings):
    result = rate_parking(events(("ka 01 ab-1234", "2026-05-04 08:00", "entry"),
                                 ("KA01.AB.1234", "2026-05-04 09:00", "exit")), settings)
    assert result.sessions.column("plate").to_pylist() == ["KA01AB1234"]


PLANS = """\
[plans.lift]
fund = "lift_replacement"
instalments = 3
first_due = 2026-01-31
every_months = 1
head = "lift_fund"

[plans.lift.accounts]
F0001 = 100.00
F0002 = 0.02
"""


@pytest.mark.parametrize(("old", "new", "where"), [
    ("instalments = 3", "instalments = 0", "plans.lift.instalments"),
    ("instalments = 3", "instalments = 2.5", "plans.lift.instalments"),
    ("first_due = 2026-01-31", 'first_due = "soon"', "plans.lift.first_due"),
    ("F0001 = 100.00", "F0001 = 100.005", "plans.lift.accounts.F0001"),
    ("F0001 = 100.00", "F0001 = -100", "plans.lift.accounts.F0001"),
    ('head = "lift_fund"\n', "", "plans.lift"),
    ('fund = "lift_replacement"', 'fund = "Lift Fund"', "plans.lift.fund"),
    ("every_months = 1", "every_months = 1\ncolour = 2", "plans.lift.colour"),
])
def test_a_bad_plan_is_refused_naming_the_file_and_the_key(old, new, where):
    with pytest.raises(RatingError) as caught:
        plans_from_toml(PLANS.replace(old, new), Site(), where="plans.toml")
    assert "plans.toml" in str(caught.value) and where in str(caught.value), str(caught.value)


def test_instalments_sum_exactly_and_fall_on_month_ends_when_the_month_is_short():
    table = schedule(plans_from_toml(PLANS, Site(), where="plans.toml"))
    rows = table.to_pylist()
    assert [r["amount_minor"] for r in rows] == schedule_reference(10000, 3) + schedule_reference(2, 3)
    assert [r["amount_minor"] for r in rows] == [3334, 3333, 3333, 1, 1, 0]
    assert [r["due"] for r in rows[:3]] == [dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31)]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rating", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_the_parking_command_prices_a_file_and_writes_its_tables(tmp_path):
    _site(tmp_path)
    pa.csv.write_csv(events(("KA01AB1234", "2026-05-04 08:00", "entry"),
                            ("KA01AB1234", "2026-05-04 10:31", "exit"),
                            ("NOPE", "2026-05-04 10:40", "exit")), tmp_path / "gate.csv")
    done = _cli("parking", "rate", "gate.csv", "--usage", "usage.toml", "--sessions", "s.parquet",
                "--anomalies", "a.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"events": 3, "sessions": 1, "amount": "60.00",
                                       "anomalies": {"unknown_plate": 1}}
    assert pa.parquet.read_table(tmp_path / "s.parquet").column("amount_minor").to_pylist() == [6000]


def test_the_parking_command_refuses_a_bad_file_and_writes_nothing(tmp_path):
    _site(tmp_path)
    (tmp_path / "gate.csv").write_text("plate,ts,event\nKA01AB1234,2026-05-04T08:00:00,arrive\n")
    done = _cli("parking", "rate", "gate.csv", "--usage", "usage.toml", "--sessions", "s.parquet",
                cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("rating: error: gate.csv row 1, column event: event must be entry, exit, "
                                   "lost_ticket; got 'arrive'")
    assert not (tmp_path / "s.parquet").exists()


def test_a_file_of_a_header_alone_rates_to_nothing(tmp_path):
    _site(tmp_path)
    (tmp_path / "gate.csv").write_text("plate,ts,event\n")
    done = _cli("parking", "rate", "gate.csv", "--usage", "usage.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"events": 0, "sessions": 0, "amount": "0.00", "anomalies": {}}


def test_the_instalments_command_prints_the_schedule_and_the_funds(tmp_path):
    _site(tmp_path)
    (tmp_path / "plans.toml").write_text(PLANS + '\n[funds.lift_replacement]\nopening = 500\n'
                                         'uses = [{ on = 2026-02-01, amount = 120.50, what = "motor" }]\n')
    done = _cli("instalments", "schedule", "plans.toml", "--usage", "usage.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "lift  lift_replacement  F0001  1  2026-01-31  33.34"
    done = _cli("instalments", "funds", "plans.toml", "--usage", "usage.toml", "--on", "2026-02-28",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # opening 500 + billed 33.34 + 33.33 + 0.01 + 0.01 - used 120.50
    assert done.stdout.split() == ["lift_replacement", "lift_replacement", "500.00", "100.02", "66.69",
                                   "0.00", "66.69", "120.50", "446.19"]


@pytest.mark.parametrize(("passes", "message"), [
    ("account_id,pass\nF0001,monthly\n", "missing column 'start'"),
    ("account_id,pass,start\nF0001,yearly,2026-05-01\n", "row 1, column pass"),
    ("account_id,pass,start\nF0001,monthly,01/05/2026\n", "row 1, column start: start must be a date"),
    ("account_id,pass,start\n,monthly,2026-05-01\n", "row 1, column account_id"),
])
def test_a_bad_subscriptions_file_is_refused_naming_row_and_column(tmp_path, passes, message):
    from rating.usage.passes import load_subscriptions

    (tmp_path / "passes.csv").write_text(passes, encoding="utf-8")
    settings = load_usage_file(_site(tmp_path))
    with pytest.raises(RatingError) as caught:
        load_subscriptions(tmp_path / "passes.csv", settings.passes)
    assert "passes.csv" in str(caught.value) and message in str(caught.value), str(caught.value)
