"""The rows to price: each touched (meter or account, period) with its tariff version and registry columns."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.consumption.quantities import AccountPeriods, PeriodQuantities
from rating.errors import TariffError
from rating.inputs import cells
from rating.model.days import date_of, day_number
from rating.model.registry import Registry
from rating.model.tariff import Tariff, TariffVersion


class Names:
    """Distinct strings and their codes, in first-seen order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        if name not in self._codes:
            self._codes[name] = len(self.names)
            self.names.append(name)
        return self._codes[name]

    def array(self) -> pa.Array:
        return pa.array(self.names, pa.string())


@dataclass(frozen=True)
class _RegistryColumns:
    """The registry as the pricer needs it: codes and ranks per meter and account."""

    account_ids: pa.Array  # sorted, so a position is a rank in id order
    account_tariff: np.ndarray  # (accounts,) code into tariff_ids, -1 without a tariff
    meter_account: np.ndarray  # (meters,) position in account_ids
    meter_rank: np.ndarray  # (meters,) rank in meter id order
    meter_tariff: np.ndarray  # (meters,) code into tariff_ids
    tariff_ids: list[str]
    account_rank: np.ndarray  # (accounts,) position in account_ids of each account, in registry order
    account_row: np.ndarray  # (accounts,) registry row of each position in account_ids
    meter_days: tuple[np.ndarray, np.ndarray]  # (meters,) first active day, day after the last
    account_days: tuple[np.ndarray, np.ndarray]  # (accounts,) the same, by position in account_ids
    dated: bool  # some meter or account has an active_from or active_until

    @classmethod
    def of(cls, registry: Registry) -> _RegistryColumns:
        # Built once per registry: streaming prices many small chunks against it.
        cached = _REGISTRY_COLUMNS.get(registry)
        if cached is None:
            cached = _REGISTRY_COLUMNS[registry] = cls._build(registry)
        return cached

    @classmethod
    def _build(cls, registry: Registry) -> _RegistryColumns:
        by_rank = pc.sort_indices(registry.account_ids).to_numpy()  # sorted position -> registry row
        rank_of = np.empty(len(by_rank), dtype=np.int64)  # registry row -> sorted position
        rank_of[by_rank] = np.arange(len(by_rank))
        account_ids = registry.account_ids.take(pa.array(by_rank))
        # codes in first-seen order: the accounts' own tariffs (sorted by account), then the meters'
        tariffs = pc.dictionary_encode(pa.concat_arrays([registry.account_tariffs.take(pa.array(by_rank)),
                                                         registry.meter_tariffs]))
        codes = tariffs.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        first, end = registry.account_active_days
        return cls(
            account_ids=account_ids,
            account_tariff=codes[:len(by_rank)],
            meter_account=rank_of[registry.account_of_meter],
            meter_rank=_ranks(registry.meter_ids),
            meter_tariff=codes[len(by_rank):],
            tariff_ids=tariffs.dictionary.to_pylist(),
            account_rank=rank_of,
            account_row=by_rank,
            meter_days=registry.meter_active_days,
            account_days=(first[by_rank], end[by_rank]),
            dated=registry.dated,
        )

    def check_tariffs(self, registry: Registry, tariffs: Mapping[str, Tariff]) -> None:
        """Every tariff the registry names must exist, used in this call or not,
        so that an error never depends on which meters happened to read."""
        missing = [t for t in self.tariff_ids if t not in tariffs]
        if not missing:
            return
        unknown = pa.array(missing, pa.string())
        meter = cells.first_true(pc.is_in(registry.meter_tariffs, value_set=unknown))
        if meter is not None:
            owner, tariff_id = f"meter {registry.meter_ids[meter].as_py()!r}", registry.meter_tariffs[meter]
        else:
            account = cells.first_true(pc.is_in(registry.account_tariffs, value_set=unknown))
            owner, tariff_id = f"account {registry.account_ids[account].as_py()!r}", \
                registry.account_tariffs[account]
        raise TariffError(f"{owner} refers to unknown tariff {tariff_id.as_py()!r}")


_REGISTRY_COLUMNS: weakref.WeakKeyDictionary[Registry, _RegistryColumns] = weakref.WeakKeyDictionary()


@dataclass
class Rows:
    """Everything priced: the touched meter periods, then the account periods.

    Account rows have meter -1 and come after the meter rows, so `qty` (one
    row per meter period) is indexed by the same row numbers.
    """

    registry: Registry
    columns: _RegistryColumns
    account: np.ndarray  # position in columns.account_ids
    meter: np.ndarray  # registry index, -1 on account rows
    meter_rank: np.ndarray  # rank in meter id order; account rows rank last
    tariff: np.ndarray  # code into columns.tariff_ids
    start: np.ndarray
    end: np.ndarray
    qty: np.ndarray
    active: np.ndarray | None  # days of each row's period its meter (and account) or account is
    # active; None when the registry dates nothing (every period whole)

    @classmethod
    def build(cls, periods: PeriodQuantities, registry: Registry, tariffs: Mapping[str, Tariff],
              accounts: AccountPeriods | None = None) -> Rows:
        """`accounts` adds account periods to those of the touched meters."""
        columns = _RegistryColumns.of(registry)
        columns.check_tariffs(registry, tariffs)
        meter = periods.meter_index.astype(np.int64)
        account = columns.meter_account[meter]
        start = periods.period_start.astype(np.int64)
        end = periods.period_end.astype(np.int64)
        # An account with its own tariff is charged once per distinct touched period.
        charged = columns.account_tariff[account] >= 0
        owner, owner_start, owner_end = account[charged], start[charged], end[charged]
        if accounts is not None:
            rank = columns.account_rank[accounts.account_index.astype(np.int64)]
            own = columns.account_tariff[rank] >= 0
            owner = np.concatenate([owner, rank[own]])
            owner_start = np.concatenate([owner_start, accounts.period_start[own].astype(np.int64)])
            owner_end = np.concatenate([owner_end, accounts.period_end[own].astype(np.int64)])
        account_periods = _distinct(owner, owner_start, owner_end)
        extra = len(account_periods[0])
        all_start = np.concatenate([start, account_periods[1]])
        all_end = np.concatenate([end, account_periods[2]])
        return cls(
            registry=registry,
            columns=columns,
            account=np.concatenate([account, account_periods[0]]),
            meter=np.concatenate([meter, np.full(extra, -1, dtype=np.int64)]),
            meter_rank=np.concatenate([columns.meter_rank[meter], np.full(extra, len(registry))]),
            tariff=np.concatenate([columns.meter_tariff[meter],
                                   columns.account_tariff[account_periods[0]]]),
            start=all_start,
            end=all_end,
            qty=periods.qty,
            active=_active_days(columns, meter, np.concatenate([account, account_periods[0]]),
                                all_start, all_end) if columns.dated else None,
        )

    def owner(self, row: int) -> str:
        """Where the meter or account a row charges is defined, for errors."""
        if self.meter[row] >= 0:
            return self.registry.meter_place(int(self.meter[row]))
        return self.registry.account_place(self.columns.account_ids[self.account[row]].as_py())

    def version_groups(self, tariffs: Mapping[str, Tariff]) -> Iterator[tuple[TariffVersion, np.ndarray]]:
        """(version, rows) for each tariff version in force on some row's period start."""
        for rows in _groups(self.tariff):
            tariff = tariffs[self.columns.tariff_ids[self.tariff[rows[0]]]]
            effective = np.array([day_number(v.effective_from) for v in tariff.versions])
            which = np.searchsorted(effective, self.start[rows], side="right") - 1
            if which.min() < 0:
                row = rows[np.argmin(which)]
                day = date_of(int(self.start[row]))
                raise tariff.no_version_error(day, owner=self.owner(row))
            for part in _groups(which):
                yield tariff.versions[which[part[0]]], rows[part]

    def order(self) -> np.ndarray:
        """Each row's position in output order: account, meter (accounts last), period."""
        order = np.lexsort((self.start, self.meter_rank, self.account))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return position


def _active_days(columns: _RegistryColumns, meter: np.ndarray, account: np.ndarray, start: np.ndarray,
                 end: np.ndarray) -> np.ndarray:
    """Days of each row's period inside its account's active dates and, on a
    meter row (the first len(meter) rows), its meter's too."""
    first = np.maximum(start, columns.account_days[0][account])
    last = np.minimum(end, columns.account_days[1][account])
    n = len(meter)
    first[:n] = np.maximum(first[:n], columns.meter_days[0][meter])
    last[:n] = np.minimum(last[:n], columns.meter_days[1][meter])
    return np.maximum(last - first, 0)


def _distinct(*keys: np.ndarray) -> list[np.ndarray]:
    """The distinct tuples of equally long key columns, sorted."""
    order = np.lexsort(keys[::-1])
    keys_sorted = [k[order] for k in keys]
    repeat = np.ones(max(len(order) - 1, 0), dtype=bool)
    for k in keys_sorted:
        repeat &= k[1:] == k[:-1]
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = ~repeat
    return [k[keep] for k in keys_sorted]


def _ranks(values: pa.Array) -> np.ndarray:
    order = pc.sort_indices(values).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Positions of each distinct key, keys ascending, positions ascending within."""
    if len(keys) == 0:
        return []
    order = np.argsort(keys, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(keys[order])) + 1)


