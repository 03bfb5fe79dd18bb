"""The meter and account registries, held as columns.

Meters: meter_id, account_id, tariff_id, mode (register | interval),
multiplier, register_digits, max_rate_per_hour, interval_minutes, unit,
wallet (the prepaid wallet the meter debits: electricity, water, ...).
Accounts: account_id, name, area, billing_cycle, tariff_id.
Only the id columns are required; the rest have the defaults below.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import ConfigError, InputError
from rating.site import Cycle, Site
from rating.tables import read_table

NO_RATE_LIMIT = -1


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


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str = ""
    area: Decimal = Decimal(0)
    cycle: Cycle | None = None  # None: the site's default
    tariff_id: str | None = None


def _column(table: pa.Table, name: str, default, where: str) -> list:
    if name not in table.column_names:
        return [default] * table.num_rows
    values = table.column(name).to_pylist()
    return [default if v is None or v == "" else v for v in values]


def _positive_int(value, *, where: str, minimum: int) -> int:
    try:
        number = int(Decimal(str(value)))
        if Decimal(str(value)) != number or number < minimum:
            raise ValueError
    except (ValueError, InvalidOperation):
        raise InputError(f"must be a whole number >= {minimum}, got {value!r}", where=where) from None
    return number


class Registry:
    """Meters and accounts, validated, with the per-meter columns the kernel needs."""

    def __init__(self, meters: list[Meter], accounts: list[Account], *, where: str = "registry"):
        self.meters = meters
        self.accounts = {a.account_id: a for a in accounts}
        if len(self.accounts) != len(accounts):
            raise InputError("duplicate account_id", where=f"{where} accounts")
        ids = [m.meter_id for m in meters]
        if len(set(ids)) != len(ids):
            dup = next(i for i, count in Counter(ids).items() if count > 1)
            raise InputError(f"duplicate meter_id {dup!r}", where=f"{where} meters")
        for m in meters:
            if m.account_id not in self.accounts:
                raise InputError(
                    f"meter {m.meter_id!r} belongs to unknown account {m.account_id!r}",
                    where=f"{where} meters",
                )
        kinds = {type(i) for i in ids}
        if len(kinds) > 1:
            raise InputError("meter ids mix integers and strings", where=f"{where} meters")
        self.meter_ids = pa.array(ids, type=pa.int64() if kinds == {int} else pa.string())
        self._index = {mid: i for i, mid in enumerate(ids)}

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


def meters_from_table(table: pa.Table, *, where: str, site: Site) -> list[Meter]:
    for required in ("meter_id", "account_id", "tariff_id"):
        if required not in table.column_names:
            raise InputError(f"missing column {required!r}", where=where)
    ids = table.column("meter_id")
    if ids.null_count:
        row = ids.is_null().to_pylist().index(True)
        raise InputError("meter_id is empty", where=f"{where} row {row + 1}")
    meter_ids = ids.to_pylist()
    cols = {
        name: _column(table, name, default, where)
        for name, default in [
            ("account_id", None), ("tariff_id", None), ("mode", "register"),
            ("multiplier", 1), ("register_digits", 0), ("max_rate_per_hour", None),
            ("interval_minutes", 15), ("unit", ""), ("wallet", "main"),
        ]
    }
    meters = []
    for row, meter_id in enumerate(meter_ids):
        at = f"{where} row {row + 1} (meter {meter_id!r})"
        for key in ("account_id", "tariff_id"):
            if cols[key][row] is None:
                raise InputError(f"{key} is empty", where=at)
        mode = str(cols["mode"][row])
        if mode not in ("register", "interval"):
            raise InputError(f"mode must be 'register' or 'interval', got {mode!r}", where=at)
        rate = cols["max_rate_per_hour"][row]
        if rate is not None:
            try:
                rate = Decimal(str(rate))
            except InvalidOperation:
                raise InputError(f"max_rate_per_hour is not a number: {rate!r}", where=at) from None
            if rate < 0 or rate != rate.quantize(site.quantity_unit):
                raise InputError(
                    f"max_rate_per_hour must be >= 0 with at most {site.quantity_decimals} decimals",
                    where=at,
                )
        digits = _positive_int(cols["register_digits"][row], where=f"{at} register_digits", minimum=0)
        if digits > 12:
            raise InputError(f"register_digits must be at most 12, got {digits}", where=at)
        meters.append(
            Meter(
                meter_id=meter_id,
                account_id=str(cols["account_id"][row]),
                tariff_id=str(cols["tariff_id"][row]),
                mode=mode,
                multiplier=_positive_int(cols["multiplier"][row], where=f"{at} multiplier", minimum=1),
                register_digits=digits,
                max_rate_per_hour=rate,
                interval_minutes=_positive_int(
                    cols["interval_minutes"][row], where=f"{at} interval_minutes", minimum=1
                ),
                unit=str(cols["unit"][row]),
                wallet=str(cols["wallet"][row]),
            )
        )
    return meters


def accounts_from_table(table: pa.Table, *, where: str) -> list[Account]:
    if "account_id" not in table.column_names:
        raise InputError("missing column 'account_id'", where=where)
    ids = _column(table, "account_id", None, where)
    names = _column(table, "name", "", where)
    areas = _column(table, "area", "0", where)
    cycles = _column(table, "billing_cycle", None, where)
    tariffs = _column(table, "tariff_id", None, where)
    accounts = []
    for row, account_id in enumerate(ids):
        at = f"{where} row {row + 1}"
        if account_id is None:
            raise InputError("account_id is empty", where=at)
        try:
            area = Decimal(str(areas[row]))
            if area < 0:
                raise InvalidOperation
        except InvalidOperation:
            raise InputError(f"area must be a number >= 0, got {areas[row]!r}", where=at) from None
        try:
            cycle = None if cycles[row] is None else Cycle.parse(str(cycles[row]), where=at)
        except ConfigError as exc:
            raise InputError(exc.message, where=at) from None
        accounts.append(
            Account(
                account_id=str(account_id),
                name=str(names[row]),
                area=area,
                cycle=cycle,
                tariff_id=None if tariffs[row] is None else str(tariffs[row]),
            )
        )
    return accounts


def load_registry(meters_path: str | Path, accounts_path: str | Path, site: Site) -> Registry:
    """Read the meter and account registries from CSV or Parquet files."""
    meters = meters_from_table(read_table(meters_path, strings=True), where=str(meters_path), site=site)
    accounts = accounts_from_table(read_table(accounts_path, strings=True), where=str(accounts_path))
    return Registry(meters, accounts, where=str(meters_path))
