"""A synthetic housing society to try the engine on: `rating demo`.

`generate_demo(folder)` writes a complete site into a folder:

- `site.toml`: Green Meadows Co-operative Housing Society, INR, Asia/Kolkata,
  the year's public holidays;
- `tariffs.toml`: a residential electricity tariff in the style of an Indian
  state commission's order (telescopic slabs, time-of-day rebate and
  surcharge, fixed charge, electricity duty; two versions), a tiered water
  tariff with meter rent and a minimum charge, a common-facilities tariff,
  and maintenance tariffs per m² with sinking and repair funds and parking;
- `billing.toml`: the postpaid bill's charge heads, interest, GST and
  rounding-off (docs/billing.md);
- `meters.csv`, `accounts.csv`: towers of flats, each with an electricity
  and a water register meter, and the society's own account holding the
  common-area master meter (CT ratio 100/5) and one lift meter per tower;
- `groups.csv`: shared-area apportionment: each tower's lift bill split over
  its flats by area, the common areas' kWh split equally over every flat;
- `readings.parquet`: every meter read every 15 minutes for one month, in
  arrival order (by time, then meter), with realistic daily load shapes,
  summer air conditioning, vacant flats and a few injected faults: a
  duplicate, an out-of-order read, a register rollover, a negative delta, a
  spike, a missing value and a meter the registry does not know.

Generation is vectorised numpy, seeded and deterministic.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rating.model.days import day_number

SOCIETY = "Green Meadows Co-operative Housing Society"
SOCIETY_ACCOUNT = "GMCHS"
TIME_ZONE = "Asia/Kolkata"
INTERVAL_MINUTES = 15
_DAY_READS = 24 * 60 // INTERVAL_MINUTES
DEFAULT_MONTH = (2025, 5)
UNKNOWN_METER = "E-X-0999"  # installed by an electrician, not yet registered
ROLLOVER_DIGITS = 5
ROLLOVER_FLAT = 5  # the flat whose old five-digit meter rolls over
# Public holidays (Republic Day, Holi, Id-ul-Fitr, Ambedkar Jayanti, Good Friday,
# Maharashtra Day, Buddha Purnima, Independence Day, Ganesh Chaturthi, Gandhi
# Jayanti, Diwali, Christmas).
HOLIDAYS = tuple(
    dt.date.fromisoformat(day)
    for day in (
        "2025-01-26", "2025-03-14", "2025-03-31", "2025-04-14", "2025-04-18", "2025-05-01",
        "2025-05-12", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-12-25",
    )
)

SITE_TOML = """\
# The site: who bills, in which currency and time zone, and which files hold
# the tariffs and the registry (paths relative to this file).
[site]
name = "{name}"
currency = "INR"
minor_unit_exponent = 2          # paisa
time_zone = "{zone}"
rounding = "half_up"             # ties away from zero, line by line
quantity_decimals = 3            # Wh and litres
billing_cycle = "calendar_month"
holidays = [{holidays}]  # day type "holiday" in time-of-day schedules

[files]
tariffs = ["tariffs.toml"]
meters = "meters.csv"
accounts = "accounts.csv"
groups = "groups.csv"            # shared-area apportionment (lifts, common areas)
"""

_RESIDENTIAL = """\
[[tariff]]
id = "RES-LT1"
name = "Residential LT-I (domestic, three-phase)"
unit = "kWh"
effective_from = {effective_from}
fixed_charge = {fixed}              # per month
taxes = [{{ name = "electricity_duty", percent = 16, on = ["energy", "fixed_charge"] }}]

[tariff.energy]                     # telescopic: each unit at its own slab's price
mode = "graduated"
slabs = [
    {{ upto = 100, price = {p1} }},
    {{ upto = 300, price = {p2} }},
    {{ upto = 500, price = {p3} }},
    {{ price = {p4} }},
]

[tariff.tou]                        # time of day: the slab price plus an adder
mode = "split_total"
periods = [
    {{ name = "normal", price = 0 }},
    {{ name = "solar", price = -0.80 }},     # rebate in solar hours
    {{ name = "peak", price = 0.80 }},       # evening peak surcharge
]

[[tariff.tou.schedules]]
day_types = ["weekday"]
spans = {{ normal = ["00:00-09:00"], solar = ["09:00-17:00"], peak = ["17:00-24:00"] }}

[[tariff.tou.schedules]]
day_types = ["weekend", "holiday"]
spans = {{ normal = ["00:00-09:00", "17:00-24:00"], solar = ["09:00-17:00"] }}
"""

TARIFFS_TOML = (
    """\
# Tariffs of the demo society. Format: docs/tariffs.md; what each component
# charges: docs/semantics.md. Prices in INR, quantities in the tariff's unit.

# Electricity for flats, in the style of an Indian state commission's
# residential order: telescopic slabs, time-of-day rebate and surcharge,
# fixed charge and electricity duty. The 2025 order replaced the 2024 one;
# a billing period uses the version in force on its first day.
"""
    + _RESIDENTIAL.format(effective_from="2024-04-01", fixed=116, p1="4.41", p2="9.64",
                          p3="12.83", p4="14.33")
    + "\n"
    + _RESIDENTIAL.format(effective_from="2025-04-01", fixed=130, p1="4.71", p2="10.29",
                          p3="14.55", p4="16.64")
    + """
# Water for flats (m3 = kL): rising blocks to discourage waste, a monthly
# meter rent, a minimum charge on consumption, and a sewerage cess.
[[tariff]]
id = "WATER-DOM"
name = "Domestic water supply"
unit = "m3"
effective_from = 2025-04-01
fees = [{ name = "meter_rent", amount = 25 }]
minimum_charge = { amount = 90, on = ["energy"] }
taxes = [{ name = "sewerage_cess", percent = 20, on = ["energy"] }]

[tariff.energy]
mode = "graduated"
slabs = [
    { upto = 8, price = 7.00 },
    { upto = 25, price = 11.00 },
    { upto = 50, price = 26.00 },
    { price = 45.00 },
]

# The society's own supply: lifts, pumps, common lighting. Volume slabs:
# every unit at the price of the slab the month's total reaches.
[[tariff]]
id = "COMMON-LT"
name = "LT common facilities (lifts, pumps, lighting)"
unit = "kWh"
effective_from = 2025-04-01
fixed_charge = 470
taxes = [{ name = "electricity_duty", percent = 21, on = ["energy", "fixed_charge"] }]

[tariff.energy]
mode = "volume"
slabs = [
    { upto = 2000, price = 8.90 },
    { price = 9.60 },
]

# Maintenance per m2 of carpet area, with the sinking and repair funds the
# bye-laws require, and parking per allotted slot. (GST on maintenance above
# INR 7,500 a month is not modelled.)
[[tariff]]
id = "MAINT"
name = "Maintenance"
effective_from = 2025-04-01
area_charge = 38.00
fees = [{ name = "sinking_fund", amount = 450 }, { name = "repair_fund", amount = 300 }]

[[tariff]]
id = "MAINT-P1"
name = "Maintenance with one parking slot"
effective_from = 2025-04-01
area_charge = 38.00
fees = [
    { name = "sinking_fund", amount = 450 },
    { name = "repair_fund", amount = 300 },
    { name = "parking", amount = 600 },
]

[[tariff]]
id = "MAINT-P2"
name = "Maintenance with two parking slots"
effective_from = 2025-04-01
area_charge = 38.00
fees = [
    { name = "sinking_fund", amount = 450 },
    { name = "repair_fund", amount = 300 },
    { name = "parking", amount = 1200 },
]
"""
)

BILLING_TOML = """\
# The society's postpaid bill (docs/billing.md): charge heads, late fees and
# interest, GST, rounding-off. Amounts in INR, rates per month unless said.

[billing]
rounding = "half_up"             # every line: ties away from zero, to the paisa
due_days = 15                    # a bill falls due 15 days after its date
# The maintenance tariffs show maintenance in `rating rate`; the bill leaves
# their lines out and bills the heads below instead (listing them in
# prepaid_tariffs would debit them from wallets as well: refused).
rated_only_tariffs = ["MAINT", "MAINT-P1", "MAINT-P2"]

[heads.maintenance]
kind = "area"
title = "Maintenance charges"
rate = 38.00                     # per m2 of carpet area a month
area_unit = "m2"

[heads.sinking_fund]
kind = "fund"                    # bye-law: 0.25 % a year of the construction cost
title = "Sinking fund"
rate = 0.25
cost_per_area = 21600.00         # construction cost per m2 (the society's valuation)
area_unit = "m2"

[heads.repair_fund]
kind = "fixed"
title = "Repair and maintenance fund"
rate = 300.00

[heads.parking]
kind = "count"
title = "Parking"
count = "parking_slots"
rate = 600.00                    # per allotted slot

[heads.non_occupancy]
kind = "non_occupancy"           # flats let out: 10 % of the service charges
title = "Non-occupancy charges"
rate = 10
of = ["maintenance", "repair_fund"]

[heads.electricity]
kind = "metered"
title = "Electricity"
tariffs = ["RES-LT1"]

[heads.water]
kind = "metered"
title = "Water"
tariffs = ["WATER-DOM"]

[heads.common_supply]
kind = "metered"                 # the society's own meters (its account's bill)
title = "Common-area supply"
tariffs = ["COMMON-LT"]

[heads.common_electricity]
kind = "share"
title = "Lifts and common areas (share)"
groups = [@GROUPS@]

[heads.event_fee]
kind = "item"
title = "Festival and event fee"

[interest.interest]
method = "simple_daily"          # 21 % a year, actual/365, after 15 days' grace
title = "Interest on arrears"
rate = 21
grace_days = 15
minimum_outstanding = 100.00

[interest.late_fee]
method = "flat"
title = "Late payment fee"
amount = 50.00
once = true

[taxes.gst]
parts = [{ name = "cgst", title = "CGST", rate = 9 }, { name = "sgst", title = "SGST", rate = 9 }]
on = ["maintenance", "sinking_fund", "repair_fund", "parking", "non_occupancy", "interest", "late_fee"]
pass_through = ["electricity", "water", "common_electricity"]
threshold_monthly = 7500.00      # per flat a month (three times that for a quarterly bill)
taxed = "whole"
turnover = [{ since = 2024-04-01, exceeds = true }]
invoice = { gstin = "27AAAAG1234A1Z5", sac = "999598", place_of_supply = "27-Maharashtra" }

[round_off]
to = 1.00                        # bills are rounded to the whole rupee
"""

_SURNAMES = (
    "Sharma", "Patil", "Iyer", "Khan", "D'Souza", "Deshpande", "Reddy", "Mehta", "Kulkarni",
    "Nair", "Gupta", "Joshi", "Banerjee", "Singh", "Fernandes", "Rao", "Shaikh", "Pillai",
    "Kapoor", "Chatterjee", "Menon", "Jain", "Agarwal", "Bhosale", "Sawant", "Pawar",
)
_GIVEN = (
    "Anil", "Sunita", "Rahul", "Priya", "Imran", "Neha", "Vikram", "Kavita", "Arjun", "Meera",
    "Sanjay", "Pooja", "Farhan", "Anjali", "Rohan", "Lakshmi", "Joseph", "Asha", "Karan", "Divya",
)


@dataclass(frozen=True)
class DemoSociety:
    """What `generate_demo` wrote."""

    folder: Path
    site_file: Path
    readings_file: Path
    flats: int
    meters: int
    readings: int
    vacant: tuple[str, ...]  # account ids of vacant flats
    faults: dict[str, str] = field(default_factory=dict)  # anomaly code -> meter id


def generate_demo(
    folder: str | Path,
    *,
    towers: int = 4,
    floors: int = 8,
    flats_per_floor: int = 4,
    seed: int = 2025,
    month: tuple[int, int] = DEFAULT_MONTH,
) -> DemoSociety:
    """Write the demo society into `folder` (created if needed)."""
    if not 1 <= towers <= 26:
        raise ValueError("towers must be 1..26")
    if floors < 1 or flats_per_floor < 1 or flats_per_floor > 99:
        raise ValueError("floors and flats_per_floor must be positive (flats_per_floor <= 99)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    flats = _flats(towers, floors, flats_per_floor, rng)
    n_flats = len(flats["account_id"])
    meters = _meters(flats, towers, rng)
    times = _times(month)
    values, null = _register_values(meters, flats, times, rng)
    readings, faults = _arrival_order(meters, times, values, null, rng)

    site_toml = SITE_TOML.format(
        name=SOCIETY, zone=TIME_ZONE, holidays=", ".join(d.isoformat() for d in HOLIDAYS)
    )
    (folder / "site.toml").write_text(site_toml, encoding="utf-8")
    (folder / "tariffs.toml").write_text(TARIFFS_TOML, encoding="utf-8")
    groups = [f"lift-{letter}" for letter in flats["letters"]] + ["common-areas"]
    billing = BILLING_TOML.replace("@GROUPS@", ", ".join(f'"{g}"' for g in groups))
    (folder / "billing.toml").write_text(billing, encoding="utf-8")
    _write_csv(_accounts_table(flats), folder / "accounts.csv")
    _write_csv(_meters_table(meters), folder / "meters.csv")
    _write_csv(_groups_table(flats, towers), folder / "groups.csv")
    pq.write_table(readings, folder / "readings.parquet", row_group_size=256 * 1024)
    vacant = tuple(a for a, v in zip(flats["account_id"], flats["vacant"], strict=True) if v)
    return DemoSociety(
        folder=folder,
        site_file=folder / "site.toml",
        readings_file=folder / "readings.parquet",
        flats=n_flats,
        meters=len(meters["meter_id"]),
        readings=readings.num_rows,
        vacant=vacant,
        faults=faults,
    )


# ------------------------------------------------------------------ registry


def _flats(towers: int, floors: int, per_floor: int, rng: np.random.Generator) -> dict:
    tower = np.repeat(np.arange(towers), floors * per_floor)
    floor = np.tile(np.repeat(np.arange(1, floors + 1), per_floor), towers)
    unit = np.tile(np.arange(1, per_floor + 1), towers * floors)
    n = len(tower)
    letters = np.array([chr(ord("A") + t) for t in range(towers)])
    account_id = [f"{letters[t]}-{f:02d}{u:02d}" for t, f, u in zip(tower, floor, unit, strict=True)]
    # Corner flats are 3 BHK, the others 2 BHK; carpet areas in m2.
    big = (unit == 1) | (unit == per_floor)
    area = np.where(big, rng.uniform(92, 108, n), rng.uniform(62, 74, n)).round(2)
    parking = rng.choice([0, 1, 2], size=n, p=[0.25, 0.6, 0.15])
    vacant = rng.random(n) < 0.05
    vacant[min(ROLLOVER_FLAT, n - 1)] = False  # its meter must turn to roll over
    names = [
        f"{_GIVEN[g]} {_SURNAMES[s]}"
        for g, s in zip(rng.integers(0, len(_GIVEN), n), rng.integers(0, len(_SURNAMES), n),
                        strict=True)
    ]
    return {
        "account_id": account_id,
        "tower": tower,
        "area": area,
        "parking": parking,
        "vacant": vacant,
        "has_ac": rng.random(n) < 0.55,
        "size": np.where(big, 1.35, 1.0) * rng.lognormal(0.0, 0.3, n),
        "names": names,
        "letters": letters,
    }


def _accounts_table(flats: dict) -> pa.Table:
    maintenance = np.array(["MAINT", "MAINT-P1", "MAINT-P2"])[flats["parking"]]
    names = [
        f"Flat {a} ({'vacant' if v else n})"
        for a, n, v in zip(flats["account_id"], flats["names"], flats["vacant"], strict=True)
    ]
    return pa.table(
        {
            "account_id": flats["account_id"] + [SOCIETY_ACCOUNT],
            "name": names + [f"{SOCIETY} (common areas)"],
            "area": [f"{a:.2f}" for a in flats["area"]] + ["0"],
            "billing_cycle": ["calendar_month"] * (len(names) + 1),
            "tariff_id": list(maintenance) + [None],
        }
    )


def _meters(flats: dict, towers: int, rng: np.random.Generator) -> dict:
    """Flat meters (electricity then water per flat), then the common meters."""
    ids, accounts, tariffs, kind, digits, multiplier, rate, unit, start = ([] for _ in range(9))
    for account in flats["account_id"]:
        ids += [f"E-{account}", f"W-{account}"]
        accounts += [account, account]
        tariffs += ["RES-LT1", "WATER-DOM"]
        kind += ["flat_e", "flat_w"]
        digits += [6, 5]
        multiplier += [1, 1]
        rate += ["20", "3"]  # kWh per hour (sanctioned load ~10 kW), m3 per hour
        unit += ["kWh", "m3"]
    n = len(ids)
    start += list(np.where(np.arange(n) % 2 == 0, rng.uniform(1_500, 40_000, n),
                           rng.uniform(150, 3_000, n)).round(2))
    # The master meter of the common areas reads through 100/5 A current transformers.
    ids.append("E-COMMON")
    accounts.append(SOCIETY_ACCOUNT)
    tariffs.append("COMMON-LT")
    kind.append("common")
    digits.append(6)
    multiplier.append(20)
    rate.append("400")
    unit.append("kWh")
    start.append(round(float(rng.uniform(10_000, 50_000)), 2))
    for letter in flats["letters"][:towers]:
        ids.append(f"E-LIFT-{letter}")
        accounts.append(SOCIETY_ACCOUNT)
        tariffs.append("COMMON-LT")
        kind.append("lift")
        digits.append(6)
        multiplier.append(1)
        rate.append("40")
        unit.append("kWh")
        start.append(round(float(rng.uniform(5_000, 30_000)), 2))
    # One flat's old electromechanical meter has only five digits and is about to roll over.
    rollover = 2 * min(ROLLOVER_FLAT, len(flats["account_id"]) - 1)
    digits[rollover] = ROLLOVER_DIGITS
    start[rollover] = 99_820.0
    return {
        "meter_id": ids, "account_id": accounts, "tariff_id": tariffs, "kind": np.array(kind),
        "register_digits": np.array(digits), "multiplier": np.array(multiplier),
        "max_rate_per_hour": rate, "unit": unit, "start": np.array(start),
        "rollover": rollover,
    }


def _groups_table(flats: dict, towers: int) -> pa.Table:
    """Each tower's lift bill split over its flats by area (the money), and the
    common areas' kWh split equally over every flat, priced on each flat's own
    slabs (docs/apportionment.md)."""
    rows: dict[str, list] = {k: [] for k in ("group_id", "account_id", "method", "basis", "common_meters")}

    def add(group: str, accounts, method: str, basis: str, meter: str) -> None:
        for account in accounts:
            for key, value in zip(rows, (group, account, method, basis, meter), strict=True):
                rows[key].append(value)

    for t, letter in enumerate(flats["letters"][:towers]):
        tower_flats = [a for a, at in zip(flats["account_id"], flats["tower"], strict=True) if at == t]
        add(f"lift-{letter}", tower_flats, "area", "cost", f"E-LIFT-{letter}")
    add("common-areas", flats["account_id"], "equal", "quantity", "E-COMMON")
    return pa.table(rows)


def _meters_table(meters: dict) -> pa.Table:
    n = len(meters["meter_id"])
    return pa.table(
        {
            "meter_id": meters["meter_id"],
            "account_id": meters["account_id"],
            "tariff_id": meters["tariff_id"],
            "mode": ["register"] * n,
            "multiplier": meters["multiplier"].tolist(),
            "register_digits": meters["register_digits"].tolist(),
            "max_rate_per_hour": meters["max_rate_per_hour"],
            "interval_minutes": [INTERVAL_MINUTES] * n,
            "unit": meters["unit"],
        }
    )


def _write_csv(table: pa.Table, path: Path) -> None:
    table = pa.table({name: table.column(name).cast(pa.string()) for name in table.column_names})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


# ------------------------------------------------------------------ readings


@dataclass(frozen=True)
class _Times:
    ts_us: np.ndarray  # (T,) reading instants, UTC µs: local midnight to local midnight
    minute: np.ndarray  # (T-1,) local minute of day at each interval's start
    weekend: np.ndarray  # (T-1,) bool: Saturday, Sunday or a holiday


def _times(month: tuple[int, int]) -> _Times:
    year, number = month
    zone = ZoneInfo(TIME_ZONE)
    first = dt.datetime(year, number, 1, tzinfo=zone)
    after = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    step_us = INTERVAL_MINUTES * 60 * 1_000_000
    start_us = int(first.timestamp()) * 1_000_000
    count = (int(after.timestamp()) * 1_000_000 - start_us) // step_us + 1
    ts_us = start_us + np.arange(count, dtype=np.int64) * step_us
    # India keeps no daylight saving time, so local time is a fixed offset.
    offset = first.utcoffset()
    assert offset is not None  # an aware datetime
    offset_us = int(offset.total_seconds()) * 1_000_000
    local_min = (ts_us[:-1] + offset_us) // 60_000_000
    day = local_min // 1440
    holidays = np.array([day_number(d) for d in HOLIDAYS])
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    weekend = (weekday >= 5) | np.isin(day, holidays)
    return _Times(ts_us=ts_us, minute=local_min % 1440, weekend=weekend)


def _bump(minute: np.ndarray, centre_h: float, width_min: float) -> np.ndarray:
    distance = np.abs(minute - centre_h * 60)
    distance = np.minimum(distance, 1440 - distance)
    return np.exp(-0.5 * (distance / width_min) ** 2)


def _register_values(meters: dict, flats: dict, times: _Times, rng: np.random.Generator):
    """Register readings (T, M), floored to the register's resolution, and a null mask."""
    minute, weekend = times.minute.astype(np.float64), times.weekend
    intervals = len(minute)
    kind = meters["kind"]
    m = len(kind)
    usage = np.zeros((intervals, m))  # quantity per interval, after the multiplier

    # Electricity of a flat, kWh per 15 minutes: standby, morning and evening peaks,
    # more at home on weekends, air conditioning on summer nights.
    home = np.where(weekend, 1.0, 0.0) * _bump(minute, 14.0, 150)
    shape_e = 0.035 + 0.15 * _bump(minute, 7.5, 55) + 0.22 * _bump(minute, 20.5, 95) + 0.08 * home
    night = ((minute >= 23 * 60) | (minute < 6 * 60)).astype(np.float64)
    flat_e = np.flatnonzero(kind == "flat_e")
    size, ac = flats["size"], flats["has_ac"]
    usage[:, flat_e] = shape_e[:, None] * size[None, :] + 0.2 * night[:, None] * ac[None, :]
    # Water of a flat, m3 per 15 minutes: baths in the morning, kitchen in the evening.
    shape_w = 0.0004 + 0.024 * _bump(minute, 7.0, 50) + 0.015 * _bump(minute, 19.5, 70)
    flat_w = np.flatnonzero(kind == "flat_w")
    usage[:, flat_w] = shape_w[:, None] * size[None, :]
    # Common areas: lighting at night, pumps filling the overhead tanks twice a day.
    lighting = ((minute >= 18.5 * 60) | (minute < 6 * 60)) * 1.6
    pumps = ((np.abs(minute - 5.5 * 60) < 60) | (np.abs(minute - 16 * 60) < 60)) * 3.8
    usage[:, kind == "common"] = (0.9 + lighting + pumps)[:, None]
    traffic = 0.12 + 0.5 * _bump(minute, 8.5, 70) + 0.45 * _bump(minute, 19.0, 90)
    usage[:, kind == "lift"] = traffic[:, None]

    usage *= rng.gamma(6.0, 1 / 6.0, size=usage.shape)  # minute-to-minute variation
    vacant = np.repeat(flats["vacant"], 2)
    usage[:, np.flatnonzero(vacant)] = 0.0

    resolution = np.where(kind == "flat_w", 0.001, 0.01)  # litres, 10 Wh
    register = np.empty((intervals + 1, m))
    register[0] = meters["start"]
    # The register counts primary units: the master meter's shows kWh / 20.
    np.cumsum(usage / meters["multiplier"], axis=0, out=register[1:])
    register[1:] += meters["start"]
    register = np.floor(register / resolution + 1e-9) * resolution
    wrap = 10.0 ** meters["register_digits"]
    register = np.round(np.mod(register, wrap), 3)
    return register, np.zeros(register.shape, dtype=bool)


def _arrival_order(meters, times, values, null, rng) -> tuple[pa.Table, dict[str, str]]:
    """Flatten (T, M) into arrival order (time, then meter) and inject faults."""
    faults, order_meter, dup_meter = _misread_values(meters, values, null, rng)
    ids = meters["meter_id"]
    t_count, m = values.shape
    columns = [np.tile(np.arange(m, dtype=np.int32), t_count), np.repeat(times.ts_us, m),
               values.reshape(-1).copy(), null.reshape(-1).copy()]
    # Out of order: the gateway delivers 14:30 before 14:15 for one meter.
    a = (12 * _DAY_READS + 57) * m + order_meter
    for column in columns[1:]:
        column[[a, a + m]] = column[[a + m, a]]
    faults["out_of_order"] = ids[order_meter]
    # A retry after a timeout delivers one reading twice.
    dup = (5 * _DAY_READS + 40) * m + dup_meter
    take = np.insert(np.arange(len(columns[0])), dup + 1, dup)
    codes, ts, flat_values, flat_null = (column[take] for column in columns)
    faults["duplicate"] = ids[dup_meter]
    # An unregistered meter reports on the last evening.
    unknown_at = np.searchsorted(ts, times.ts_us[-6:], side="right")
    codes = np.insert(codes, unknown_at, m)
    ts = np.insert(ts, unknown_at, times.ts_us[-6:])
    flat_values = np.insert(flat_values, unknown_at, np.round(np.linspace(412.5, 413.4, 6), 2))
    flat_null = np.insert(flat_null, unknown_at, False)
    faults["unknown_meter"] = UNKNOWN_METER

    dictionary = pa.array(list(ids) + [UNKNOWN_METER], pa.string())
    table = pa.table(
        {
            "meter_id": pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary),
            "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "value": pa.array(flat_values, pa.float64(), mask=flat_null),
        }
    )
    return table, faults


def _misread_values(meters, values, null, rng) -> tuple[dict[str, str], int, int]:
    """Misread registers in place (a negative delta, a spike, a lost value); the
    faults by anomaly, and the meters that will arrive out of order and twice."""
    ids = meters["meter_id"]
    flat_e = [int(i) for i in np.flatnonzero(meters["kind"] == "flat_e")]
    candidates = [i for i in flat_e if i != meters["rollover"]] or flat_e
    occupied = [i for i in candidates if values[-1, i] != values[0, i]] or candidates
    pick = rng.choice(occupied, size=4, replace=len(occupied) < 4)
    neg_meter, spike_meter, null_meter, order_meter = (int(i) for i in pick)
    # A misread register, 37.5 kWh low: a negative delta, never a rollover.
    values[10 * _DAY_READS + 30, neg_meter] -= 37.5
    # A misread 480 kWh high: far beyond the meter's 20 kWh/h bound.
    values[17 * _DAY_READS + 70, spike_meter] += 480.0
    # A reading lost in transmission arrives without a value.
    null[21 * _DAY_READS + 50, null_meter] = True
    faults = {"negative_delta": ids[neg_meter], "spike": ids[spike_meter],
              "null_value": ids[null_meter], "rollover": ids[meters["rollover"]]}
    return faults, order_meter, int(candidates[0])
