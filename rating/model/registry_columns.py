"""The registry's columns: meters and accounts as Arrow arrays, every
optional column present with its default filled in (nullable only where
null means something: no rate limit, no area, an open date, no own tariff).

Files are typed and checked a column at a time (rating.inputs.cells; every
error names the file, row and column) and never become Python objects per
row; registries built in code (rating.model.registry_rows) are turned into
the same columns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import ConfigError, InputError, SchemaError
from rating.inputs import cells
from rating.model.groups import WEIGHT_DECIMALS, WEIGHT_MAX
from rating.model.registry_rows import BILL_TO, MODES, OCCUPANCIES, Account, Meter
from rating.model.site import Cycle, Site

MULTIPLIER_MAX = 2**31 - 1  # the kernel keeps it as int32
REGISTER_DIGITS_MAX = 12
INTERVAL_MINUTES_MAX = 366 * 24 * 60  # an interval reading covers at most a (leap) year
RATE_MAX = Decimal(10) ** 12  # max_rate_per_hour; in quantity units it fits an int64
AREA_DECIMALS = WEIGHT_DECIMALS  # apportionment by area is exact at this resolution
AREA_MAX = WEIGHT_MAX
METER_TEXT_DEFAULTS = {"mode": "register", "unit": "", "wallet": "main"}
METER_WHOLE_DEFAULTS = {"multiplier": 1, "register_digits": 0, "interval_minutes": 15}
ACCOUNT_TEXT_DEFAULTS = {"name": "", "tenant": "", "bill_to": "owner", "address": "", "occupancy": "owner",
                         "tags": "", "email": "", "phone": ""}
_TAG_SEPARATORS = r"[,;\s]+"


@dataclass(frozen=True)
class MeterColumns:
    """One array per Meter field, in its order."""

    meter_id: pa.Array  # string or int64
    account_id: pa.Array
    tariff_id: pa.Array
    mode: pa.Array
    multiplier: pa.Array  # int64
    register_digits: pa.Array  # int64
    max_rate_per_hour: pa.Array  # decimal, null: no limit
    interval_minutes: pa.Array  # int64
    unit: pa.Array
    wallet: pa.Array
    active_from: pa.Array  # date32, null: open
    active_until: pa.Array

    def __len__(self) -> int:
        return len(self.meter_id)


@dataclass(frozen=True)
class AccountColumns:
    """One array per Account field; the cycle as a code into `cycles` (-1: the site's)."""

    account_id: pa.Array
    name: pa.Array
    area: pa.Array  # decimal, null: no area
    cycle_code: np.ndarray  # int16
    tariff_id: pa.Array  # null: none of its own
    active_from: pa.Array
    active_until: pa.Array
    tenant: pa.Array
    bill_to: pa.Array
    address: pa.Array
    occupancy: pa.Array
    tags: pa.Array  # the tags, one space between them
    email: pa.Array
    phone: pa.Array
    cycles: tuple[Cycle, ...] = ()

    def __len__(self) -> int:
        return len(self.account_id)


def meter_columns_of(meters: Sequence[Meter], *, where: str) -> MeterColumns:
    """The columns of meters built in code."""
    ids = [m.meter_id for m in meters]
    kinds = {type(i) for i in ids}
    if len(kinds) > 1:
        raise InputError("meter ids mix integers and strings", where=f"{where} column meter_id", file=where,
                         column="meter_id")
    typed = {"meter_id": pa.array(ids, pa.int64() if kinds == {int} else pa.string())}
    for field in fields(MeterColumns)[1:]:
        values = [getattr(m, field.name) for m in meters]
        typed[field.name] = _decimals(values) if field.name == "max_rate_per_hour" else pa.array(
            values, _ROW_TYPES.get(field.name, pa.string()))
    return MeterColumns(**typed)


def account_columns_of(accounts: Sequence[Account]) -> AccountColumns:
    """The columns of accounts built in code."""
    typed = {name: pa.array([getattr(a, name) for a in accounts], _ROW_TYPES.get(name, pa.string()))
             for name in ("account_id", "name", "tariff_id", "active_from", "active_until", "tenant",
                          "bill_to", "address", "occupancy", "email", "phone")}
    typed["area"] = _decimals([a.area for a in accounts])
    typed["tags"] = pa.array([" ".join(sorted(a.tags)) for a in accounts], pa.string())
    cycles = tuple(dict.fromkeys(a.cycle for a in accounts if a.cycle is not None))
    code: dict[Cycle | None, int] = {cycle: i for i, cycle in enumerate(cycles)}
    typed["cycle_code"] = np.array([code.get(a.cycle, -1) for a in accounts], dtype=np.int16)
    return AccountColumns(**typed, cycles=cycles)


_ROW_TYPES = {"multiplier": pa.int64(), "register_digits": pa.int64(), "interval_minutes": pa.int64(),
              "active_from": pa.date32(), "active_until": pa.date32()}


def _decimals(values: list[Decimal | None]) -> pa.Array:
    """Decimals of any scale (pyarrow picks one that holds them all); all null: decimal(38, 0)."""
    if all(v is None for v in values):
        return pa.nulls(len(values), pa.decimal128(38, 0))
    return pa.array(values)


def meter_columns_from_table(table: pa.Table, *, where: str, site: Site) -> MeterColumns:
    """Each meter column typed, checked and filled (text or typed tables)."""
    _required(table, ("meter_id", "account_id", "tariff_id"), where)
    ids = cells.column(table, "meter_id", where=where)
    assert ids is not None  # required above
    typed = {"meter_id": ids.cast(pa.int64()) if pa.types.is_integer(ids.type) else
             cells.text(table, "meter_id", where=where)}
    for name in ("account_id", "tariff_id", "mode", "unit", "wallet"):
        typed[name] = cells.text(table, name, where=where)
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
    typed.update(_active_dates(table, where))
    n = table.num_rows
    for name, default in (METER_TEXT_DEFAULTS | METER_WHOLE_DEFAULTS).items():
        kind = pa.string() if name in METER_TEXT_DEFAULTS else pa.int64()
        typed[name] = _filled(typed[name], default, n, kind)
    if typed["max_rate_per_hour"] is None:
        typed["max_rate_per_hour"] = pa.nulls(n, pa.decimal128(38, site.quantity_decimals))
    return MeterColumns(**typed)


def account_columns_from_table(table: pa.Table, *, where: str) -> AccountColumns:
    """Each account column typed, checked and filled (text or typed tables)."""
    _required(table, ("account_id",), where)
    typed = {name: cells.text(table, name, where=where)
             for name in ("account_id", "tariff_id", *ACCOUNT_TEXT_DEFAULTS)}
    cells.present(typed["account_id"], where=where, name="account_id")
    typed["area"] = cells.numbers(table, "area", where=where, decimals=AREA_DECIMALS, minimum=Decimal(0),
                                  maximum=AREA_MAX)
    typed.update(_active_dates(table, where))
    for name in ("bill_to", "occupancy"):
        if typed[name] is not None:
            typed[name] = pc.utf8_trim_whitespace(typed[name])
            cells.one_of(typed[name], BILL_TO if name == "bill_to" else OCCUPANCIES, where=where, name=name)
    if typed["tags"] is not None:
        tags = pc.utf8_trim(pc.replace_substring_regex(typed["tags"], _TAG_SEPARATORS, " "), characters=" ")
        typed["tags"] = tags
    n = table.num_rows
    for name, default in ACCOUNT_TEXT_DEFAULTS.items():
        typed[name] = _filled(typed[name], default, n, pa.string())
    _check_tenants(typed["bill_to"], typed["tenant"], where)
    for name, kind in (("tariff_id", pa.string()), ("area", pa.decimal128(38, AREA_DECIMALS))):
        if typed[name] is None:
            typed[name] = pa.nulls(n, kind)
    codes, cycles = _cycles(cells.text(table, "billing_cycle", where=where), n, where=where)
    return AccountColumns(**typed, cycle_code=codes, cycles=cycles)


def _check_tenants(bill_to: pa.Array, tenant: pa.Array, where: str) -> None:
    """A bill addressed to the tenant needs the tenant's name."""
    to_tenant = pc.equal(bill_to, "tenant")
    cells.refuse(pc.and_(to_tenant, pc.equal(pc.utf8_trim_whitespace(tenant), "")), bill_to, where, "tenant",
                 lambda _: "bill_to is tenant but the tenant column is empty")


def _required(table: pa.Table, names: tuple[str, ...], where: str) -> None:
    for name in names:
        if name not in table.column_names:
            raise SchemaError(f"missing column {name!r}", where=where, file=where, column=name)


def _filled(array: pa.Array | None, default: object, n: int, type_: pa.DataType) -> pa.Array:
    """A column with nulls (and a missing column) as `default`."""
    if array is None:
        return pa.nulls(n, type_).fill_null(default)
    return array.fill_null(default) if array.null_count else array


def _active_dates(table: pa.Table, where: str) -> dict[str, pa.Array]:
    """`active_from` and `active_until` as date32 (ISO dates, blank: open);
    the last day may not precede the first."""
    typed = {name: _dates(table, name, where) for name in ("active_from", "active_until")}
    check_date_order(typed["active_from"], typed["active_until"], where)
    return typed


def check_date_order(start: pa.Array, end: pa.Array, where: str) -> None:
    cells.refuse(pc.less(end, start), end, where, "active_until",
                 lambda value: f"active_until {value} is before active_from")


def _dates(table: pa.Table, name: str, where: str) -> pa.Array:
    """A column of ISO dates (2025-05-10) as date32, null where blank (or absent)."""
    array = cells.column(table, name, where=where)
    if array is None:
        return pa.nulls(table.num_rows, pa.date32())
    if pa.types.is_date32(array.type):
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


def _cycles(text: pa.Array | None, n: int, *, where: str) -> tuple[np.ndarray, tuple[Cycle, ...]]:
    """Each row's billing cycle as a code into the distinct cycles (-1: the
    site's default); every distinct text is parsed once."""
    if text is None:
        return np.full(n, -1, dtype=np.int16), ()
    encoded = pc.dictionary_encode(text)
    cycles: list[Cycle] = []
    code_of_text = np.empty(len(encoded.dictionary), dtype=np.int16)
    for i, value in enumerate(encoded.dictionary.to_pylist()):
        try:
            cycle = Cycle.parse(value, where=where)
        except ConfigError as exc:
            row = cells.first_true(pc.equal(text, value))
            raise cells.error_at(exc.message, where, row or 0, "billing_cycle") from None
        if cycle not in cycles:
            cycles.append(cycle)
        code_of_text[i] = cycles.index(cycle)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    lookup = np.append(code_of_text, np.int16(-1))  # a null's code (-1) lands on the last slot
    return lookup[codes], tuple(cycles)


def check_areas(meters: MeterColumns, accounts: AccountColumns, priced_by_area: Collection[str], *,
                where: str) -> None:
    """An account whose charges include an area charge must have an area."""
    if not priced_by_area:
        return
    tariffs = pa.array(sorted(priced_by_area), pa.string())
    metered = pc.is_in(meters.tariff_id, value_set=tariffs)
    needs_area = pc.or_(pc.is_in(accounts.account_id, value_set=meters.account_id.filter(metered)),
                        pc.is_in(accounts.tariff_id, value_set=tariffs))
    row = cells.first_true(pc.and_(needs_area, accounts.area.is_null()))
    if row is None:
        return
    account = accounts.account_id[row].as_py()
    own = accounts.tariff_id[row].as_py()
    tariff = own if own in priced_by_area else meters.tariff_id.filter(
        pc.and_(metered, pc.equal(meters.account_id, account)))[0].as_py()
    raise cells.error_at(f"account {account!r} has no area (blank or a placeholder such as #N/A), but "
                         f"tariff {tariff!r} charges per area (area_charge)", where, row, "area")
