"""A parking tariff: free minutes, a price per started step (an hour, a
minute), time-of-day prices (night rates), a cap per 24 hours and a
lost-ticket charge; read from a `[parking.tariffs.<id>]` table.

Prices are int64 counts of 10^-6 currency units (`_u`), like the tariffs'.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from rating.config.tariff_file import _check_keys, _fail, _number, _span_minutes
from rating.model.site import PRICE_DECIMALS
from rating.model.tariff import MINUTES_PER_DAY

PRICE_SCALE = 10**PRICE_DECIMALS
# A step price and a lost-ticket charge stay below 10^6 currency units and a
# daily cap below 10^9: a session of SESSION_DAYS_MAX days then sums in int64.
STEP_PRICE_LIMIT = Decimal(10) ** 6
CAP_LIMIT = Decimal(10) ** 9
SESSION_DAYS_MAX = 400  # longer stays are anomalies (`too_long`), never priced
_KEYS = {"free_minutes", "step_minutes", "price", "bands", "daily_cap", "lost_ticket"}
_BAND_KEYS = {"span", "price"}


@dataclass(frozen=True)
class ParkingTariff:
    tariff_id: str
    free_minutes: int  # the first minutes of a stay are free; charging starts after them
    step_minutes: int  # a divisor of 1440: 60 prices each started hour, 1 each started minute
    price: Decimal  # per step, outside every band
    bands: tuple[tuple[int, int, Decimal], ...]  # (first minute, end minute, price) of local time
    daily_cap: Decimal | None  # at most this per 24 hours from entry
    lost_ticket: Decimal  # an exit with a lost ticket pays this, whatever the stay

    def price_at(self, minute_of_day: int) -> Decimal:
        """The step price in force at a local minute of the day."""
        for start, end, price in self.bands:
            if start <= minute_of_day < end:
                return price
        return self.price

    def minute_prices_u(self) -> np.ndarray:
        """The step price at each local minute of the day (1440 int64, 10^-6 units)."""
        prices = np.full(MINUTES_PER_DAY, _units(self.price), dtype=np.int64)
        for start, end, price in self.bands:
            prices[start:end] = _units(price)
        return prices


def _units(value: Decimal) -> int:
    return int(value.scaleb(PRICE_DECIMALS))


def parking_tariff(tariff_id: str, raw: Any, at: str) -> ParkingTariff:
    """One tariff table; errors name `at` (the file) and the key."""
    path = f"parking.tariffs.{tariff_id}"
    table = _check_keys(raw, _KEYS, ("step_minutes", "price", "lost_ticket"), at, path)
    free = _whole(table.get("free_minutes", 0), at, f"{path}.free_minutes", 0, MINUTES_PER_DAY - 1)
    step = _whole(table["step_minutes"], at, f"{path}.step_minutes", 1, MINUTES_PER_DAY)
    if MINUTES_PER_DAY % step:
        _fail(at, f"{path}.step_minutes", f"must divide a day of 1440 minutes (60: per started hour, "
              f"1: per minute), got {step}")
    cap = table.get("daily_cap")
    return ParkingTariff(
        tariff_id, free, step, _price(table["price"], at, f"{path}.price", STEP_PRICE_LIMIT),
        _bands(table.get("bands", []), at, f"{path}.bands"),
        None if cap is None else _price(cap, at, f"{path}.daily_cap", CAP_LIMIT),
        _price(table["lost_ticket"], at, f"{path}.lost_ticket", STEP_PRICE_LIMIT))


def _bands(raw: Any, at: str, path: str) -> tuple[tuple[int, int, Decimal], ...]:
    if not isinstance(raw, list):
        _fail(at, path, "must be an array of tables {span = \"HH:MM-HH:MM\", price = ...}")
    bands = []
    for i, row in enumerate(raw):
        row = _check_keys(row, _BAND_KEYS, ("span", "price"), at, f"{path}[{i}]")
        start, end = _span_minutes(row["span"], at, f"{path}[{i}].span")
        bands.append((start, end, _price(row["price"], at, f"{path}[{i}].price", STEP_PRICE_LIMIT), i))
    bands.sort()
    for (_, end, _, _), (start, _, _, j) in zip(bands, bands[1:], strict=False):
        if start < end:
            _fail(at, f"{path}[{j}].span", "overlaps another band; each minute has one price")
    return tuple(b[:3] for b in bands)


def _price(value: Any, at: str, path: str, limit: Decimal) -> Decimal:
    number = _number(value, at, path)
    if number >= limit:
        _fail(at, path, f"must be below {limit:,}, got {value}")
    return number


def _whole(value: Any, at: str, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(at, path, f"must be a whole number {low}..{high}, got {value!r}")
    return value
