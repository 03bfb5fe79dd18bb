"""The shapes a bill run passes between its rules and its ledger.

Amounts are integer minor units of the site's currency; dates are calendar
dates in the site's time zone. A draft is pure data: computing it writes
nothing, and the same inputs give the same draft.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class LineKind(StrEnum):
    """What a bill line is, so allocation, interest and taxes can tell them apart."""

    CHARGE = "charge"  # a head's charge for the cycle (maintenance, fund, metered, fee item)
    ARREARS = "arrears"  # unpaid balance brought forward (shown, not posted again)
    INTEREST = "interest"
    LATE_FEE = "late_fee"
    TAX = "tax"
    ROUNDING = "rounding"


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
    """

    head: str
    kind: LineKind
    amount_minor: int
    description: str
    basis: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DraftBill:
    """A unit's bill for a cycle before issue: no number, nothing posted."""

    cycle: Cycle
    account_id: str
    bill_to: str
    lines: tuple[BillLine, ...]
    anomalies: tuple[str, ...] = field(default=())

    @property
    def charges_minor(self) -> int:
        """What this cycle adds to the dues: every line but arrears, already owed."""
        return sum(line.amount_minor for line in self.lines if line.kind is not LineKind.ARREARS)

    @property
    def total_due_minor(self) -> int:
        """What the bill asks the unit to pay: this cycle's charges and its arrears."""
        return sum(line.amount_minor for line in self.lines)
