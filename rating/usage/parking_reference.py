"""The parking path's definition, slow and plain: events paired into sessions
one at a time in arrival order, and each session priced step by step in
Decimal. The vectorised path (parking_pairing, parking_pricing) equals it
exactly (tests/test_usage_parking_properties.py).

Pairing, per plate, in the order events arrive:
- an event earlier than the plate's latest one is `out_of_order` and skipped;
- an entry opens a stay; an entry while one is open makes the open one a
  `double_entry` (its exit was missed: never charged) and opens anew;
- an exit closes the open stay into a session, or is an `exit_without_entry`;
- a lost-ticket exit is a session charged the lost-ticket price, closing the
  open stay if there is one;
- a stay longer than SESSION_DAYS_MAX days is `too_long`, not priced.
A stay still open at the end is carried to the next batch.

Pricing a session: its first `free_minutes` are free; from there each started
step of `step_minutes` costs the price in force at the step's local start
time; the steps starting in each 24 hours from entry cost at most
`daily_cap`; the total is rounded once to the minor unit by the site's rule.
Local time is the entry's UTC offset throughout the stay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from rating.model.site import Site
from rating.usage.parking_tariff import SESSION_DAYS_MAX, ParkingTariff

MINUTE_US = 60_000_000
DAY_US = 1440 * MINUTE_US
ENTRY, EXIT, LOST = 0, 1, 2  # event codes
NO_ENTRY = -(2**63)  # entry instant of a lost-ticket session that had none


@dataclass
class PlateState:
    last_us: int
    open_entry_us: int | None  # the open stay's entry, None when closed
    open_row: int = 0  # its row in this batch (0: an earlier batch)


@dataclass
class Paired:
    sessions: list[tuple[int, int, int, bool, int]] = field(default_factory=list)  # plate, in, out, lost, row
    anomalies: list[tuple[int, int, int, str]] = field(default_factory=list)  # row, plate, ts, code


def pair_reference(plates: list[int], ts_us: list[int], kinds: list[int],
                   state: dict[int, PlateState]) -> Paired:
    """Pair events (plate -1: unknown) into sessions; `state` moves in place.
    Rows count from 1."""
    out = Paired()
    for row, (plate, ts, kind) in enumerate(zip(plates, ts_us, kinds, strict=True), start=1):
        if plate < 0:
            out.anomalies.append((row, plate, ts, "unknown_plate"))
            continue
        held = state.get(plate)
        if held is not None and ts < held.last_us:
            out.anomalies.append((row, plate, ts, "out_of_order"))
            continue
        entry = held.open_entry_us if held is not None else None
        if kind == ENTRY:
            if held is not None and entry is not None:
                out.anomalies.append((held.open_row, plate, entry, "double_entry"))
            state[plate] = PlateState(ts, ts, row)
            continue
        if entry is None and kind == EXIT:
            out.anomalies.append((row, plate, ts, "exit_without_entry"))
        elif entry is not None and ts - entry > SESSION_DAYS_MAX * DAY_US:
            out.anomalies.append((row, plate, ts, "too_long"))
        else:
            out.sessions.append((plate, NO_ENTRY if entry is None else entry, ts, kind == LOST, row))
        state[plate] = PlateState(ts, None)
    for held in state.values():
        held.open_row = 0
    return out


def charge_reference(tariff: ParkingTariff, entry_us: int, exit_us: int, offset_us: int) -> Decimal:
    """A stay's charge before rounding (currency units)."""
    start_us = entry_us + tariff.free_minutes * MINUTE_US
    step_us = tariff.step_minutes * MINUTE_US
    windows: dict[int, Decimal] = {}
    step_start_us = start_us
    while step_start_us < exit_us:
        window = (step_start_us - entry_us) // DAY_US
        minute = (step_start_us + offset_us) // MINUTE_US % 1440
        windows[window] = windows.get(window, Decimal(0)) + tariff.price_at(minute)
        step_start_us += step_us
    cap = tariff.daily_cap
    return sum((w if cap is None else min(w, cap) for w in windows.values()), Decimal(0))


def session_amount_reference(tariff: ParkingTariff, entry_us: int, exit_us: int, lost: bool,
                             site: Site) -> Decimal:
    """What a session costs, rounded to the site's minor unit."""
    if lost:
        charge = tariff.lost_ticket
    else:
        charge = charge_reference(tariff, entry_us, exit_us, utc_offset_us(entry_us, site))
    return charge.quantize(site.minor_unit, rounding=site.rounding_mode)


def utc_offset_us(instant_us: int, site: Site) -> int:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=instant_us)
    offset = moment.astimezone(site.zone).utcoffset()
    assert offset is not None
    return offset // dt.timedelta(microseconds=1)
