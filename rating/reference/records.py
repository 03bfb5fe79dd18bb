"""The reference's records and exact arithmetic: what goes in, what comes out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from rating.model.registry import Meter

UNITS_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
INT64_MAX = 2**63 - 1
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# Every Decimal operation of the rating logic is exact: a result that would
# need rounding raises Inexact instead. Rounding happens only in `round_money`.
EXACT = Context(
    prec=400, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation, Overflow, DivisionByZero]
)
ROUNDING = Context(prec=400, traps=[InvalidOperation, Overflow])


# --------------------------------------------------------------------------- #
# Public records
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class RefReading:
    meter_id: str | int
    ts: int  # epoch count in the unit given to reference_rate
    value: Decimal | None  # a multiple of site.quantity_unit (quantized at the edge)


@dataclass(frozen=True)
class RefLine:
    """One charge line; compare as a tuple."""

    account_id: str
    meter_id: str | int | None  # None on account-level lines
    tariff_id: str
    period_start: dt.date
    period_end: dt.date  # last day of the period, inclusive
    component: str
    tou_period: str | None
    slab: int | None  # counts from 1
    quantity: Decimal | None
    unit_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True)
class RefAnomaly:
    row: int
    meter_id: str | int
    ts: int
    code: str
    delta: Decimal | None
    priced: bool


@dataclass(frozen=True)
class Interval:
    """An accepted consumption `q` over `(t0, t1]`."""

    meter: Meter
    t0: int
    t1: int
    q: int
