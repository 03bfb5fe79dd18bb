"""The shapes a bill run passes between its rules and its ledger.

Amounts are integer minor units of the site's currency; dates are calendar
dates in the site's time zone. A draft is pure data: computing it writes
nothing, and the same inputs give the same draft.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from rating.model.site import Cycle as BillingCycle


class LineKind(StrEnum):
    """What a bill line is, so allocation, interest and taxes can tell them apart."""

    CHARGE = "charge"  # a head's charge for the cycle (maintenance, fund, metered, fee item)
    ARREARS = "arrears"  # unpaid balance brought forward (shown, not posted again)
    INTEREST = "interest"
    LATE_FEE = "late_fee"
    TAX = "tax"
    ROUNDING = "rounding"


_ARREARS = LineKind.ARREARS  # looked up once: an Enum class attribute is slow in Python 3.11


@dataclass(frozen=True)
class Cycle:
    """One billing cycle of a site: the days it covers, both ends included."""

    site_id: str
    period_start: dt.date
    period_end: dt.date
    bill_date: dt.date
    due_date: dt.date

    @property
    def cycle_id(self) -> str:
        """Stable name of the cycle, e.g. ``2025-05-01..2025-05-31``."""
        return f"{self.period_start.isoformat()}..{self.period_end.isoformat()}"


@dataclass(frozen=True)
class BillLine:
    """One line of a bill: what is owed under one charge head and why.

    ``basis`` holds what the amount was computed from (area and rate, usage and
    slabs, base and days for interest), as text, for the rendered bill.
    ``ref`` is what the line is charged on when that is not the cycle itself:
    for interest and late fees the bill (``DuesItem.bill_ref``) it is late on,
    so a ledger can key a late fee once per (bill, rule, period).
    """

    head: str
    kind: LineKind
    amount_minor: int
    description: str
    basis: tuple[tuple[str, str], ...] = ()
    ref: str = ""


class Occupancy(StrEnum):
    """Who lives in a unit; a non-occupancy charge applies to units let out."""

    OWNER = "owner"  # occupied by its owner or the owner's family
    LET_OUT = "let_out"  # occupied by a tenant or licensee
    VACANT = "vacant"


class BillTo(StrEnum):
    OWNER = "owner"
    TENANT = "tenant"


@dataclass(frozen=True)
class Unit:
    """A unit (flat, shop) as a bill run sees it: the account and what its rules read.

    ``area`` is as in the accounts registry (``rating.model.registry.Account``): a
    Decimal of at most 6 places, None when the unit has none (never 0).
    ``billed_from`` / ``billed_until`` are the first and last day the unit is
    billed (handover, move-out, sale), None when open; a cycle that only
    partly falls between them prorates the heads that say so.
    ``meters`` are the unit's meters as (meter_id, tariff_id), so a metered
    head can bill a meter that sent nothing at zero, with an anomaly.
    ``counts`` are per-unit quantities a head charges per piece, e.g.
    (("parking_slots", 2),). ``construction_cost_minor`` is the unit's share
    of the construction cost, for a sinking fund charged on it.
    """

    account_id: str
    owner: str = ""
    area: Decimal | None = None
    occupancy: Occupancy = Occupancy.OWNER
    tags: frozenset[str] = frozenset()
    billing_cycle: BillingCycle | None = None  # None: the site's default
    billed_from: dt.date | None = None
    billed_until: dt.date | None = None
    tenant: str = ""
    bill_to: BillTo = BillTo.OWNER
    address: str = ""  # the unit's postal address, lines separated by newlines
    meters: tuple[tuple[str | int, str], ...] = ()
    counts: tuple[tuple[str, int], ...] = ()
    construction_cost_minor: int | None = None

    @property
    def bill_to_name(self) -> str:
        """The name the bill is addressed to."""
        return self.tenant if self.bill_to is BillTo.TENANT and self.tenant else self.owner


@dataclass(frozen=True)
class DuesItem:
    """One open dues item of a unit: what is still owed under a head of an
    earlier bill (or an imported due), and when it fell due."""

    head: str
    kind: LineKind
    amount_minor: int
    due_date: dt.date
    bill_ref: str


@dataclass(frozen=True)
class SharePart:
    """How a shared-area share line was split (rating.apportion)."""

    group_id: str
    method: str  # area | consumption | equal | weight
    weight: Decimal
    weight_total: Decimal


@dataclass(frozen=True)
class UsageLine:
    """One rated line of a unit for the cycle, as `rating.engine.rate()` wrote
    it (rating.schema.charges_schema); ``share`` is set on shared-area lines."""

    meter_id: str | int | None
    tariff_id: str
    component: str
    period_start: dt.date
    period_end: dt.date
    quantity: Decimal
    amount_minor: int
    tou_period: str = ""
    slab: int | None = None
    share: SharePart | None = None


@dataclass(frozen=True)
class OneOffItem:
    """A charge for one unit in one cycle only (an event fee, a damage charge)."""

    head: str
    amount_minor: int
    description: str


@dataclass(frozen=True)
class DraftBill:
    """A unit's bill for a cycle before issue: no number, nothing posted."""

    cycle: Cycle
    account_id: str
    bill_to: str
    lines: tuple[BillLine, ...]
    anomalies: tuple[str, ...] = field(default=())
    address: str = ""  # the unit's, under the name the bill is addressed to

    @property
    def charges_minor(self) -> int:
        """What this cycle adds to the dues: every line but arrears, already owed."""
        return sum(line.amount_minor for line in self.lines if line.kind is not _ARREARS)

    @property
    def total_due_minor(self) -> int:
        """What the bill asks the unit to pay: this cycle's charges and its arrears."""
        return sum(line.amount_minor for line in self.lines)
