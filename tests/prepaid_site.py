"""A small prepaid site for the prepaid tests: flats with an electricity and a
water register meter each, a maintenance tariff per account, wallet policy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa


class Clock:
    """A settable clock for PrepaidService(clock=...): the site's friendly hours
    make cut-offs depend on the time of day, so tests never use the real one."""

    def __init__(self, when: dt.datetime):
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()


UTC = dt.timezone.utc
AFTERNOON = dt.datetime(2025, 5, 5, 10, 0, tzinfo=UTC)  # Monday 15:30 in Kolkata: cut-offs happen
NIGHT = dt.datetime(2025, 5, 5, 16, 0, tzinfo=UTC)  # Monday 21:30: friendly hours
HOLIDAY_NOON = dt.datetime(2025, 5, 1, 6, 30, tzinfo=UTC)  # Maharashtra Day 12:00: friendly day

SITE_TOML = """\
[site]
name = "Test Towers"
currency = "INR"
minor_unit_exponent = 2
time_zone = "Asia/Kolkata"
rounding = "half_even"
quantity_decimals = 3
holidays = ["2025-05-01"]

[files]
tariffs = "tariffs.toml"
meters = "meters.csv"
accounts = "accounts.csv"

[prepaid]
account_lines_wallet = "maintenance"

[prepaid.wallets.electricity]
low_balance = 100
emergency_credit = 20
restore_above = 0
friendly_hours = ["18:00-09:00"]
friendly_days = ["sunday", "holiday"]

[prepaid.wallets.water]
low_balance = 50
emergency_credit = 0
"""

TARIFFS_TOML = """\
[[tariff]]
id = "ELEC"
unit = "kWh"
effective_from = 2024-01-01

[tariff.energy]
mode = "graduated"
slabs = [{ upto = 100, price = 4.50 }, { upto = 300, price = 9.25 }, { price = 12.80 }]

[[tariff]]
id = "WATER"
unit = "m3"
effective_from = 2024-01-01
minimum_charge = { amount = 40, on = ["energy"] }

[tariff.energy]
mode = "volume"
slabs = [{ upto = 10, price = 7.00 }, { price = 11.00 }]

[[tariff]]
id = "MAINT"
effective_from = 2024-01-01
fixed_charge = 500
"""


def account_ids(flats: int) -> list[str]:
    return [f"F{i:04d}" for i in range(flats)]


def write_site(folder: str | Path, flats: int = 8) -> Path:
    """Write the site into `folder`; returns the site file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.toml").write_text(SITE_TOML, encoding="utf-8")
    (folder / "tariffs.toml").write_text(TARIFFS_TOML, encoding="utf-8")
    accounts = account_ids(flats)
    lines = ["account_id,name,area,tariff_id"] + [f"{a},Flat {a},80,MAINT" for a in accounts]
    (folder / "accounts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meters = ["meter_id,account_id,tariff_id,mode,wallet"]
    for a in accounts:
        meters.append(f"E-{a},{a},ELEC,register,electricity")
        meters.append(f"W-{a},{a},WATER,register,water")
    (folder / "meters.csv").write_text("\n".join(meters) + "\n", encoding="utf-8")
    return folder / "site.toml"


START = dt.datetime(2025, 5, 5, tzinfo=dt.timezone.utc)  # a Monday


def readings(flats: int, steps: int, *, start: dt.datetime = START, every_min: int = 15,
             seed: int = 7) -> pa.Table:
    """Every meter read every `every_min` minutes, `steps` times, in arrival
    order (time, then meter); registers start at a baseline and rise."""
    rng = np.random.default_rng(seed)
    accounts = account_ids(flats)
    meter_ids = [f"E-{a}" for a in accounts] + [f"W-{a}" for a in accounts]
    n = len(meter_ids)
    step_qty = np.concatenate([rng.integers(0, 900, size=(steps, flats)),  # Wh per 15 min
                               rng.integers(0, 60, size=(steps, flats))], axis=1)  # litres
    values = np.cumsum(step_qty, axis=0) / 1000.0 + 100.0
    base_us = int(start.timestamp() * 1_000_000)
    ts = base_us + np.repeat(np.arange(steps, dtype=np.int64) * every_min * 60_000_000, n)
    return pa.table({
        "meter_id": pa.array(meter_ids * steps, pa.string()),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "value": pa.array(values.reshape(-1), pa.float64()),
    })


def batches(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)]
