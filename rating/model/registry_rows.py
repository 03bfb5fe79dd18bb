"""One meter and one account of the registry as Python objects: what code
builds a registry from (tests, benchmarks, the Decimal reference) and what
the registry's per-item views hand back. Loading files builds none of them
(rating.model.registry_columns)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from rating.errors import InputError
from rating.model.site import Cycle

MODES = ("register", "interval")
BILL_TO = ("owner", "tenant")  # who an account's bills are addressed to
OCCUPANCIES = ("owner", "let_out", "vacant")  # rating.billing.documents.Occupancy


@dataclass(frozen=True)
class Meter:
    """One registry row, as the reference and error messages see it."""

    meter_id: str | int
    account_id: str
    tariff_id: str
    mode: str = "register"
    multiplier: int = 1
    register_digits: int = 0
    max_rate_per_hour: Decimal | None = None
    interval_minutes: int = 15
    unit: str = ""
    wallet: str = "main"
    active_from: dt.date | None = None  # first local day connected; None: open
    active_until: dt.date | None = None  # last local day connected; None: open


@dataclass(frozen=True)
class Account:
    """One account (a unit). `name` is its owner's name; `tenant`, `bill_to`,
    `address`, `occupancy`, `tags`, `email` and `phone` are what bills and
    reminders read (docs/billing.md, "The accounts file")."""

    account_id: str
    name: str = ""
    area: Decimal | None = None  # None: no area (blank in the file), never priced as 0
    cycle: Cycle | None = None  # None: the site's default
    tariff_id: str | None = None
    active_from: dt.date | None = None  # first local day held (move-in, purchase); None: open
    active_until: dt.date | None = None  # last local day held (move-out, sale); None: open
    tenant: str = ""
    bill_to: str = "owner"  # owner | tenant
    address: str = ""  # the unit's postal address, lines separated by newlines
    occupancy: str = "owner"  # owner | let_out | vacant
    tags: frozenset[str] = frozenset()
    email: str = ""  # carried as text; rating.notify validates contacts
    phone: str = ""

    def area_for(self, charge: str) -> Decimal:
        """The area an area charge prices (`charge` names it in the error);
        registry files are checked up front (registry_from_tables), so this
        only refuses an Account built in code without an area."""
        if self.area is None:
            raise InputError(f"account {self.account_id!r} has no area, but {charge} charges per area")
        return self.area
