"""The meter and account registries, held as columns.

Meters: meter_id, account_id, tariff_id, mode (register | interval),
multiplier, register_digits, max_rate_per_hour, interval_minutes, unit,
wallet (the prepaid wallet the meter debits: electricity, water, ...),
active_from, active_until.
Accounts: account_id, name (the owner's), area, billing_cycle, tariff_id,
active_from, active_until, and what bills and reminders read: tenant,
bill_to (owner | tenant), address, occupancy (owner | let_out | vacant),
tags, email, phone (docs/billing.md, "The accounts file").
`active_from` / `active_until` are the first and last local day a meter is
connected or an account is held (a new connection, a move-in or move-out, a
sale), as ISO dates; blank: open. A period they cut is a part period
(docs/tariffs.md, "Part periods").
Only the id columns are required; a column left out, or a blank cell, takes
the default (rating.model.registry_columns). A blank (or placeholder:
`#N/A`, `NA`, `NULL`, ...) area is no area, never 0: an account without an
area whose tariff charges per area is an error. Tables are checked a column
at a time (rating.inputs.cells); every error names the file, row and column.

A registry holds Arrow columns and numpy arrays, not an object per meter:
10^7 meters load in seconds (bench/bench_registry.py). `meters` and
`accounts` are per-item views for the callers that want objects
(rating.model.registry_views).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import InputError
from rating.inputs import cells
from rating.inputs.tables import read_table
from rating.model.id_lookup import MeterLookup
from rating.model.registry_columns import (
    AREA_DECIMALS,
    AREA_MAX,
    INTERVAL_MINUTES_MAX,
    MULTIPLIER_MAX,
    RATE_MAX,
    REGISTER_DIGITS_MAX,
    AccountColumns,
    MeterColumns,
    account_columns_from_table,
    account_columns_of,
    check_areas,
    check_date_order,
    meter_columns_from_table,
    meter_columns_of,
)
from rating.model.registry_rows import MODES, Account, Meter
from rating.model.registry_views import AccountRows, MeterRows
from rating.model.site import Cycle, Site

__all__ = ["AREA_DECIMALS", "AREA_MAX", "INTERVAL_MINUTES_MAX", "MODES", "MULTIPLIER_MAX", "NO_RATE_LIMIT",
           "RATE_MAX", "REGISTER_DIGITS_MAX", "Account", "Meter", "Registry", "load_registry",
           "registry_from_tables"]

NO_RATE_LIMIT = -1
OPEN_FIRST_DAY = -(2**40)  # an open start: before every period
OPEN_END_DAY = 2**40  # an open end: after every period


class Registry:
    """Meters and accounts, validated, with the per-meter columns the kernel needs."""

    def __init__(self, meters: Sequence[Meter] | MeterColumns,
                 accounts: Sequence[Account] | AccountColumns, *, meters_where: str = "meters",
                 accounts_where: str = "accounts"):
        """Meters and accounts as objects (built in code) or as columns (read
        from files); `meters_where` and `accounts_where` name the tables in
        errors; a row is a position in its table, from 1."""
        given_meters = None if isinstance(meters, MeterColumns) else meters
        given_accounts = None if isinstance(accounts, AccountColumns) else accounts
        self.meter_columns: MeterColumns = meters if isinstance(meters, MeterColumns) else meter_columns_of(
            meters, where=meters_where)
        self.account_columns: AccountColumns = accounts if isinstance(accounts, AccountColumns) else (
            account_columns_of(accounts))
        self.meters_where, self.accounts_where = meters_where, accounts_where
        self.meter_ids = self.meter_columns.meter_id
        self.account_ids = self.account_columns.account_id  # in registry order
        self.meter_accounts = self.meter_columns.account_id  # each meter's account_id
        self.meter_lookup = MeterLookup(self.meter_ids)
        self._account_lookup = MeterLookup(self.account_ids)
        with ThreadPoolExecutor(max_workers=1) as other:  # the hash builds release the GIL: one per core
            meters_checked = other.submit(_refuse_repeats, self.meter_lookup, where=meters_where,
                                          name="meter_id")
            _refuse_repeats(self._account_lookup, where=accounts_where, name="account_id")  # its error first
            meters_checked.result()
        # each meter's account, as a position in `accounts`
        self.account_of_meter = self._account_positions(self.meter_accounts)
        if given_meters is not None or given_accounts is not None:  # files are checked when read
            for held, where in ((self.meter_columns, meters_where), (self.account_columns, accounts_where)):
                check_date_order(held.active_from, held.active_until, where)
        self.meters = MeterRows(self.meter_columns, given_meters)
        self.accounts = AccountRows(self.account_columns, given_accounts, self.account_position)
        self._kernel_columns: dict[int, dict[str, np.ndarray]] = {}  # by quantity_decimals

    def _account_positions(self, owners: pa.Array) -> np.ndarray:
        found = self._account_lookup.positions(owners)
        if len(found) and found.min() < 0:
            orphan = int(np.argmax(found < 0))
            raise cells.error_at(f"meter {self.meter_ids[orphan].as_py()!r} belongs to unknown account "
                                 f"{owners[orphan].as_py()!r}", self.meters_where, orphan, "account_id")
        return found

    def account_position(self, account_id: str) -> int:
        """The account's row in registry order (from 0), -1 when unknown."""
        return int(self._account_lookup.positions(pa.array([account_id], pa.string()))[0])

    @functools.cached_property
    def _areas(self) -> list[Decimal | None]:
        return self.account_columns.area.to_pylist()  # built when an area charge is first priced

    def area_for(self, row: int, charge: str) -> Decimal:
        """The area of the account in registry row `row` that an area charge
        prices (`charge` names it in the error); files are checked up front
        (registry_from_tables), so this only refuses accounts built in code."""
        area = self._areas[row]
        if area is None:
            raise InputError(f"account {self.account_ids[row].as_py()!r} has no area, but {charge} charges "
                             "per area")
        return area

    @property
    def meter_tariffs(self) -> pa.Array:
        """Each meter's tariff_id (string)."""
        return self.meter_columns.tariff_id

    @property
    def account_tariffs(self) -> pa.Array:
        """Each account's own tariff_id (string, null for none), in registry order."""
        return self.account_columns.tariff_id

    @functools.cached_property
    def meter_active_days(self) -> tuple[np.ndarray, np.ndarray]:
        """Each meter's first active day and the day after its last (days since
        1970-01-01, int64); open ends are far outside any period."""
        return _day_bounds(self.meter_columns.active_from, self.meter_columns.active_until)

    @functools.cached_property
    def account_active_days(self) -> tuple[np.ndarray, np.ndarray]:
        """`meter_active_days` of each account, in registry order."""
        return _day_bounds(self.account_columns.active_from, self.account_columns.active_until)

    @functools.cached_property
    def dated(self) -> bool:
        """Some meter or account has an active_from or an active_until."""
        return any(column.null_count < len(column) for columns in (self.meter_columns, self.account_columns)
                   for column in (columns.active_from, columns.active_until))

    def account_anchor_days(self, site: Site) -> np.ndarray:
        """Each account's billing cycle (its anchor day, int8), in registry order."""
        # the site's default last, where code -1 lands
        anchors = [c.anchor_day for c in self.account_columns.cycles] + [site.default_cycle.anchor_day]
        return np.array(anchors, dtype=np.int8)[self.account_columns.cycle_code]

    def meter_place(self, index: int) -> str:
        """Where a meter is defined, for errors: `meters.csv row 4 (meter 'E-3')`."""
        return f"{self.meters_where} row {index + 1} (meter {self.meter_ids[index].as_py()!r})"

    def account_place(self, account_id: str) -> str:
        """Where an account is defined, for errors: `accounts.csv row 2 (account 'A-2')`."""
        return f"{self.accounts_where} row {self.account_position(account_id) + 1} (account {account_id!r})"

    def __len__(self) -> int:
        return len(self.meter_ids)

    def index_of(self, meter_ids: pa.Array) -> np.ndarray:
        """Registry index of each id (int32), -1 where the meter is unknown."""
        if pa.types.is_dictionary(meter_ids.type):
            positions = self.index_of(meter_ids.dictionary)
            codes = meter_ids.indices.fill_null(0).to_numpy(zero_copy_only=False)
            return positions[codes]
        if meter_ids.type != self.meter_ids.type:
            try:
                meter_ids = meter_ids.cast(self.meter_ids.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"meter_id of type {meter_ids.type} does not match the registry's "
                    f"{self.meter_ids.type}: {exc}"
                ) from None
        found = pc.index_in(meter_ids, value_set=self.meter_ids)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)

    def columns(self, site: Site) -> dict[str, np.ndarray]:
        """Per-meter arrays in fixed point, as the consumption kernel takes them
        (built once per quantity resolution; callers must not write to them)."""
        built = self._kernel_columns.get(site.quantity_decimals)
        if built is None:
            built = self._kernel_columns[site.quantity_decimals] = self._build_columns(site.quantity_decimals)
        return built

    def _build_columns(self, quantity_decimals: int) -> dict[str, np.ndarray]:
        m = self.meter_columns
        scale = 10**quantity_decimals
        digits = _int64s(m.register_digits)
        return {
            "is_interval": pc.equal(m.mode, "interval").to_numpy(zero_copy_only=False).astype(np.uint8),
            "multiplier": _int64s(m.multiplier),
            "rollover_qty": np.where(digits > 0, np.power(10, digits, dtype=np.int64) * scale, 0),
            "max_rate_qty_per_hour": _fixed_point(m.max_rate_per_hour, quantity_decimals),
            "interval_minutes": _int64s(m.interval_minutes),
        }

    def cycle_of(self, account_id: str, site: Site) -> Cycle:
        code = int(self.account_columns.cycle_code[self.account_position(account_id)])
        return site.default_cycle if code < 0 else self.account_columns.cycles[code]


def _refuse_repeats(lookup: MeterLookup, *, where: str, name: str) -> None:
    """Each id once: a repeat names itself, its row and the first row."""
    repeat = lookup.first_repeat()
    if repeat is not None:
        row, first = repeat
        value = lookup.registry_ids[row].as_py()
        raise cells.error_at(f"duplicate {name} {value!r} (first in row {first + 1})", where, row, name)


def _int64s(array: pa.Array) -> np.ndarray:
    return array.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _fixed_point(rates: pa.Array, decimals: int) -> np.ndarray:
    """Decimals as int64 units of 10^-decimals (truncated), NO_RATE_LIMIT where null."""
    exact = pc.cast(rates, pa.decimal128(38, decimals), safe=False)
    # a decimal128 is a little-endian 128-bit integer: rates up to RATE_MAX fit its low word
    words = np.frombuffer(exact.buffers()[1], dtype=np.int64).reshape(-1, 2)
    out = words[exact.offset:exact.offset + len(exact), 0].copy()
    out[exact.is_null().to_numpy(zero_copy_only=False)] = NO_RATE_LIMIT
    return out


def _day_bounds(first: pa.Array, last: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    def days(dates: pa.Array, open_day: int, after: int) -> np.ndarray:
        numbers = dates.cast(pa.int32()).cast(pa.int64())
        return pc.add(numbers, after).fill_null(open_day).to_numpy(zero_copy_only=False)
    return days(first, OPEN_FIRST_DAY, 0), days(last, OPEN_END_DAY, 1)


def registry_from_tables(meters: pa.Table, accounts: pa.Table, *, site: Site, meters_where: str,
                         accounts_where: str, priced_by_area: Collection[str] = ()) -> Registry:
    """The registry of a meters and an accounts table. `priced_by_area` are
    the tariffs that charge per area: an account without an area whose own
    tariff or one of whose meters' tariffs is among them is an error."""
    with ThreadPoolExecutor(max_workers=1) as other:  # pyarrow compute releases the GIL: one table per core
        accounts_typed = other.submit(account_columns_from_table, accounts, where=accounts_where)
        meter_columns = meter_columns_from_table(meters, where=meters_where, site=site)  # its error first
        account_columns = accounts_typed.result()
    check_areas(meter_columns, account_columns, priced_by_area, where=accounts_where)
    return Registry(meter_columns, account_columns, meters_where=meters_where, accounts_where=accounts_where)


def load_registry(meters_path: str | Path, accounts_path: str | Path, site: Site, *,
                  priced_by_area: Collection[str] = ()) -> Registry:
    """Read the meter and account registries from CSV, Parquet or Arrow files."""
    meters, accounts = read_table(meters_path, strings=True), read_table(accounts_path, strings=True)
    return registry_from_tables(meters, accounts, site=site, meters_where=str(meters_path),
                                accounts_where=str(accounts_path), priced_by_area=priced_by_area)
