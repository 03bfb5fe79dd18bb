"""The meter and account registries, held as columns.

Meters: meter_id, account_id, tariff_id, mode (register | interval),
multiplier, register_digits, max_rate_per_hour, interval_minutes, unit,
wallet (the prepaid wallet the meter debits: electricity, water, ...),
active_from, active_until.
Accounts: account_id, name, area, billing_cycle, tariff_id, active_from,
active_until.
`active_from` / `active_until` are the first and last local day a meter is
connected or an account is held (a new connection, a move-in or move-out, a
sale), as ISO dates; blank: open. A period they cut is a part period
(docs/tariffs.md, "Part periods").
Only the id columns are required; a column left out, or a blank cell, takes
the default below. A blank (or placeholder: `#N/A`, `NA`, `NULL`, ...)
area is no area, never 0: an account without an area whose tariff charges
per area is an error. Tables are checked a column at a time
(rating.inputs.cells); every error names the file, row and column.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import ConfigError, InputError, SchemaError
from rating.inputs import cells
from rating.inputs.tables import read_table
from rating.model.groups import WEIGHT_DECIMALS, WEIGHT_MAX
from rating.model.site import Cycle, Site

NO_RATE_LIMIT = -1
MULTIPLIER_MAX = 2**31 - 1  # the kernel keeps it as int32
REGISTER_DIGITS_MAX = 12
INTERVAL_MINUTES_MAX = 366 * 24 * 60  # an interval reading covers at most a (leap) year
RATE_MAX = Decimal(10) ** 12  # max_rate_per_hour; in quantity units it fits an int64
AREA_DECIMALS = WEIGHT_DECIMALS  # apportionment by area is exact at this resolution
AREA_MAX = WEIGHT_MAX
MODES = ("register", "interval")


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
    account_id: str
    name: str = ""
    area: Decimal | None = None  # None: no area (blank in the file), never priced as 0
    cycle: Cycle | None = None  # None: the site's default
    tariff_id: str | None = None
    active_from: dt.date | None = None  # first local day held (move-in, purchase); None: open
    active_until: dt.date | None = None  # last local day held (move-out, sale); None: open

    def area_for(self, charge: str) -> Decimal:
        """The area an area charge prices (`charge` names it in the error);
        registry files are checked up front (registry_from_tables), so this
        only refuses an Account built in code without an area."""
        if self.area is None:
            raise InputError(f"account {self.account_id!r} has no area, but {charge} charges per area")
        return self.area


class Registry:
    """Meters and accounts, validated, with the per-meter columns the kernel needs."""

    def __init__(self, meters: list[Meter], accounts: list[Account], *, meters_where: str = "meters",
                 accounts_where: str = "accounts"):
        """`meters_where` and `accounts_where` name the tables in errors; a
        meter's or an account's row is its position in its list, from 1."""
        ids = [m.meter_id for m in meters]
        kinds = {type(i) for i in ids}
        if len(kinds) > 1:
            raise InputError("meter ids mix integers and strings", where=f"{meters_where} column meter_id",
                             file=meters_where, column="meter_id")
        self.meter_ids = pa.array(ids, type=pa.int64() if kinds == {int} else pa.string())
        account_ids = pa.array([a.account_id for a in accounts], pa.string())
        cells.unique(account_ids, where=accounts_where, name="account_id")
        cells.unique(self.meter_ids, where=meters_where, name="meter_id")
        owners = pa.array([m.account_id for m in meters], pa.string())
        orphan = cells.first_true(pc.invert(pc.is_in(owners, value_set=account_ids)))
        if orphan is not None:
            raise cells.error_at(f"meter {ids[orphan]!r} belongs to unknown account "
                                     f"{owners[orphan].as_py()!r}", meters_where, orphan, "account_id")
        _check_dates(meters, meters_where)
        _check_dates(accounts, accounts_where)
        self.meters = meters
        self.accounts = {a.account_id: a for a in accounts}
        self.meters_where, self.accounts_where = meters_where, accounts_where
        self.meter_accounts = owners  # each meter's account_id
        self.account_ids = account_ids  # in registry order
        # each meter's account, as a position in `accounts`
        self.account_of_meter = _positions(pc.index_in(owners, value_set=account_ids))

    @functools.cached_property
    def meter_tariffs(self) -> pa.Array:
        """Each meter's tariff_id (string)."""
        return pa.array([m.tariff_id for m in self.meters], pa.string())

    @functools.cached_property
    def account_tariffs(self) -> pa.Array:
        """Each account's own tariff_id (string, null for none), in registry order."""
        return pa.array([a.tariff_id for a in self.accounts.values()], pa.string())

    @functools.cached_property
    def meter_active_days(self) -> tuple[np.ndarray, np.ndarray]:
        """Each meter's first active day and the day after its last (days since
        1970-01-01, int64); open ends are far outside any period."""
        return _day_bounds([(m.active_from, m.active_until) for m in self.meters])

    @functools.cached_property
    def account_active_days(self) -> tuple[np.ndarray, np.ndarray]:
        """`meter_active_days` of each account, in registry order."""
        return _day_bounds([(a.active_from, a.active_until) for a in self.accounts.values()])

    def account_anchor_days(self, site: Site) -> np.ndarray:
        """Each account's billing cycle (its anchor day, int8), in registry order."""
        default = site.default_cycle.anchor_day
        return np.array([default if a.cycle is None else a.cycle.anchor_day for a in self.accounts.values()],
                        dtype=np.int8)

    def meter_place(self, index: int) -> str:
        """Where a meter is defined, for errors: `meters.csv row 4 (meter 'E-3')`."""
        return f"{self.meters_where} row {index + 1} (meter {self.meters[index].meter_id!r})"

    def account_place(self, account_id: str) -> str:
        """Where an account is defined, for errors: `accounts.csv row 2 (account 'A-2')`."""
        row = list(self.accounts).index(account_id) + 1
        return f"{self.accounts_where} row {row} (account {account_id!r})"

    def __len__(self) -> int:
        return len(self.meters)

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
        """Per-meter arrays in fixed point, as the consumption kernel takes them."""
        scale = 10**site.quantity_decimals
        rate = np.full(len(self.meters), NO_RATE_LIMIT, dtype=np.int64)
        for i, m in enumerate(self.meters):
            if m.max_rate_per_hour is not None:
                rate[i] = int(m.max_rate_per_hour * scale)
        return {
            "is_interval": np.array([m.mode == "interval" for m in self.meters], dtype=np.uint8),
            "multiplier": np.array([m.multiplier for m in self.meters], dtype=np.int64),
            "rollover_qty": np.array(
                [10**m.register_digits * scale if m.register_digits else 0 for m in self.meters],
                dtype=np.int64,
            ),
            "max_rate_qty_per_hour": rate,
            "interval_minutes": np.array([m.interval_minutes for m in self.meters], dtype=np.int64),
        }

    def cycle_of(self, account_id: str, site: Site) -> Cycle:
        return self.accounts[account_id].cycle or site.default_cycle


def _check_dates(holders: Sequence[Meter | Account], where: str) -> None:
    """A last active day before the first is refused (rows built in code;
    files are checked a column at a time when read)."""
    for row, holder in enumerate(holders):
        if holder.active_from is not None and holder.active_until is not None \
                and holder.active_until < holder.active_from:
            raise cells.error_at(f"active_until {holder.active_until} is before active_from "
                                 f"{holder.active_from}", where, row, "active_until")


OPEN_FIRST_DAY = -(2**40)  # an open start: before every period
OPEN_END_DAY = 2**40  # an open end: after every period


def _day_bounds(dates: list[tuple[dt.date | None, dt.date | None]]) -> tuple[np.ndarray, np.ndarray]:
    epoch = dt.date(1970, 1, 1).toordinal()
    first = [OPEN_FIRST_DAY if a is None else a.toordinal() - epoch for a, _ in dates]
    end = [OPEN_END_DAY if b is None else b.toordinal() - epoch + 1 for _, b in dates]
    return np.array(first, dtype=np.int64), np.array(end, dtype=np.int64)


def _positions(found: pa.Array) -> np.ndarray:
    """int32 positions of an index_in result (every value found)."""
    return found.to_numpy(zero_copy_only=False).astype(np.int32)


def meters_from_table(table: pa.Table, *, where: str, site: Site) -> list[Meter]:
    """The meters of a registry table (text or typed columns)."""
    return _meters(_meter_columns(table, where=where, site=site), table.num_rows)


def accounts_from_table(table: pa.Table, *, where: str) -> list[Account]:
    """The accounts of a registry table (text or typed columns)."""
    return _accounts(_account_columns(table, where=where), table.num_rows, where=where)


def registry_from_tables(meters: pa.Table, accounts: pa.Table, *, site: Site, meters_where: str,
                         accounts_where: str, priced_by_area: Collection[str] = ()) -> Registry:
    """The registry of a meters and an accounts table. `priced_by_area` are
    the tariffs that charge per area: an account without an area whose own
    tariff or one of whose meters' tariffs is among them is an error."""
    meter_columns = _meter_columns(meters, where=meters_where, site=site)
    account_columns = _account_columns(accounts, where=accounts_where)
    _check_areas(meter_columns, account_columns, priced_by_area, where=accounts_where)
    return Registry(_meters(meter_columns, meters.num_rows),
                    _accounts(account_columns, accounts.num_rows, where=accounts_where),
                    meters_where=meters_where, accounts_where=accounts_where)


def load_registry(meters_path: str | Path, accounts_path: str | Path, site: Site, *,
                  priced_by_area: Collection[str] = ()) -> Registry:
    """Read the meter and account registries from CSV, Parquet or Arrow files."""
    meters, accounts = read_table(meters_path, strings=True), read_table(accounts_path, strings=True)
    return registry_from_tables(meters, accounts, site=site, meters_where=str(meters_path),
                                accounts_where=str(accounts_path), priced_by_area=priced_by_area)


def _required(table: pa.Table, names: tuple[str, ...], where: str) -> None:
    for name in names:
        if name not in table.column_names:
            raise SchemaError(f"missing column {name!r}", where=where, file=where, column=name)


def _meter_columns(table: pa.Table, *, where: str, site: Site) -> dict[str, pa.Array | None]:
    """Each meter column typed and checked; None where the table lacks it."""
    _required(table, ("meter_id", "account_id", "tariff_id"), where)
    ids = cells.column(table, "meter_id", where=where)
    assert ids is not None  # required above
    typed = {"meter_id": ids if pa.types.is_integer(ids.type) else cells.text(table, "meter_id",
                                                                                 where=where)}
    for name in ("account_id", "tariff_id", "mode", "unit", "wallet"):
        typed[name] = cells.text(table, name, where=where)
    typed.update(_active_dates(table, where))
    for name in ("meter_id", "account_id", "tariff_id"):
        cells.present(typed[name], where=where, name=name)
    if typed["mode"] is not None:
        cells.one_of(typed["mode"], MODES, where=where, name="mode")
    for name, low, high in (("multiplier", 1, MULTIPLIER_MAX), ("register_digits", 0, REGISTER_DIGITS_MAX),
                            ("interval_minutes", 1, INTERVAL_MINUTES_MAX)):
        typed[name] = cells.whole_numbers(table, name, where=where, minimum=low, maximum=high)
    typed["max_rate_per_hour"] = cells.numbers(table, "max_rate_per_hour", where=where,
                                                 decimals=site.quantity_decimals, minimum=Decimal(0),
                                                 maximum=RATE_MAX)
    return typed


def _meters(typed: dict[str, pa.Array | None], n: int) -> list[Meter]:
    fields = ("meter_id", "account_id", "tariff_id", "mode", "multiplier", "register_digits",
              "max_rate_per_hour", "interval_minutes", "unit", "wallet", "active_from", "active_until")
    defaults = {"mode": "register", "multiplier": 1, "register_digits": 0, "max_rate_per_hour": None,
                "interval_minutes": 15, "unit": "", "wallet": "main"}
    values = [_filled(typed[name], defaults.get(name), n) for name in fields]
    return [Meter(*row) for row in zip(*values, strict=True)]


def _account_columns(table: pa.Table, *, where: str) -> dict[str, pa.Array | None]:
    _required(table, ("account_id",), where)
    typed = {name: cells.text(table, name, where=where)
             for name in ("account_id", "name", "billing_cycle", "tariff_id")}
    cells.present(typed["account_id"], where=where, name="account_id")
    typed["area"] = cells.numbers(table, "area", where=where, decimals=AREA_DECIMALS, minimum=Decimal(0),
                                    maximum=AREA_MAX)
    typed.update(_active_dates(table, where))
    return typed


def _accounts(typed: dict[str, pa.Array | None], n: int, *, where: str) -> list[Account]:
    return [
        Account(*row)
        for row in zip(
            _filled(typed["account_id"], None, n), _filled(typed["name"], "", n),
            _filled(typed["area"], None, n), _cycles(typed["billing_cycle"], n, where=where),
            _filled(typed["tariff_id"], None, n), _filled(typed["active_from"], None, n),
            _filled(typed["active_until"], None, n), strict=True,
        )
    ]


def _active_dates(table: pa.Table, where: str) -> dict[str, pa.Array | None]:
    """`active_from` and `active_until` as date32 (ISO dates, blank: open);
    the last day may not precede the first."""
    typed = {name: _dates(table, name, where) for name in ("active_from", "active_until")}
    start, end = typed["active_from"], typed["active_until"]
    if start is not None and end is not None:
        cells.refuse(pc.less(end, start), end, where, "active_until",
                     lambda value: f"active_until {value} is before active_from")
    return typed


def _dates(table: pa.Table, name: str, where: str) -> pa.Array | None:
    """A column of ISO dates (2025-05-10) as date32, null where blank."""
    array = cells.column(table, name, where=where)
    if array is None or pa.types.is_date32(array.type):
        return array
    array = cells.text(table, name, where=where)
    assert array is not None  # the column exists
    array = pc.utf8_trim_whitespace(array)
    pattern = pc.match_substring_regex(array, r"^\d{4}-\d{2}-\d{2}$")
    cells.refuse(pc.invert(pattern), array, where, name, lambda value: f"not a date (2025-05-10): {value!r}")
    try:
        return array.cast(pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        position = cells.first_refused(array, lambda part: part.cast(pa.date32()))
        raise cells.error_at(f"not a date (2025-05-10): {array[position].as_py()!r}", where, position,
                             name) from None


def _cycles(text: pa.Array | None, n: int, *, where: str) -> Iterable[Cycle | None]:
    """Each row's billing cycle; every distinct text is parsed once."""
    if text is None:
        return itertools.repeat(None, n)
    parsed: dict[str | None, Cycle | None] = {None: None}
    for value in pc.unique(text).to_pylist():
        if value is not None:
            try:
                parsed[value] = Cycle.parse(value, where=where)
            except ConfigError as exc:
                row = cells.first_true(pc.equal(text, value))
                raise cells.error_at(exc.message, where, row or 0, "billing_cycle") from None
    return map(parsed.__getitem__, text.to_pylist())


def _filled(array: pa.Array | None, default: object, n: int) -> Iterable:
    """A column's values with nulls (and a missing column) as `default`."""
    if array is None:
        return itertools.repeat(default, n)
    return array.to_pylist() if default is None else array.fill_null(default).to_pylist()


def _check_areas(meters: dict[str, pa.Array | None], accounts: dict[str, pa.Array | None],
                 priced_by_area: Collection[str], *, where: str) -> None:
    """An account whose charges include an area charge must have an area."""
    if not priced_by_area:
        return
    tariffs = pa.array(sorted(priced_by_area), pa.string())
    account_ids = accounts["account_id"]
    meter_accounts, meter_tariffs = meters["account_id"], meters["tariff_id"]
    assert account_ids is not None and meter_accounts is not None and meter_tariffs is not None  # required
    metered = pc.is_in(meter_tariffs, value_set=tariffs)
    needs_area = pc.is_in(account_ids, value_set=meter_accounts.filter(metered))
    own_tariff = accounts["tariff_id"]
    if own_tariff is not None:
        needs_area = pc.or_(needs_area, pc.is_in(own_tariff, value_set=tariffs))
    missing = accounts["area"].is_null() if accounts["area"] is not None else pc.is_valid(account_ids)
    row = cells.first_true(pc.and_(needs_area, missing))
    if row is None:
        return
    account = account_ids[row].as_py()
    own = own_tariff[row].as_py() if own_tariff is not None else None
    tariff = own if own in priced_by_area else meter_tariffs.filter(
        pc.and_(metered, pc.equal(meter_accounts, account)))[0].as_py()
    raise cells.error_at(f"account {account!r} has no area (blank or a placeholder such as #N/A), but "
                             f"tariff {tariff!r} charges per area (area_charge)", where, row, "area")
