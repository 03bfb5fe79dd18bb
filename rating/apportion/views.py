"""What planning and the lines read and write: the consumption about to be priced, the
registry as groups see it, the anomalies found, the quantity moved between meters."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.apportion.shapes import ANOMALY_REASONS, apportion_anomalies_schema
from rating.config.loader import Config
from rating.consumption.quantities import PeriodQuantities, period_key, period_keys
from rating.errors import InputError
from rating.fixedpoint import decimal_units
from rating.model.days import date_of
from rating.model.groups import Group, Groups


class Consumption:
    """The engine's consumption table as int64 quantities per (meter, period)."""

    def __init__(self, table: pa.Table, config: Config, width: int, sources: set[int]):
        site, registry = config.site, config.registry
        self.meter = registry.index_of(table.column("meter_id").combine_chunks()).astype(np.int64)
        if (self.meter < 0).any():
            row = int(np.argmax(self.meter < 0))
            raise InputError(f"consumption row {row + 1}: meter not in the registry")
        self.start = table.column("period_start").cast(pa.int32()).to_numpy().astype(np.int64)
        self.end = table.column("period_end").cast(pa.int32()).to_numpy().astype(np.int64) + 1
        qty, null = decimal_units(table.column("quantity"), site.quantity_decimals, site.rounding)
        if null.any():
            raise InputError("consumption has a null quantity")
        tou = _tou_index(table, config)
        key = period_keys(self.meter, self.start)
        unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        self.qty = np.zeros((len(unique), width), dtype=np.int64)
        np.add.at(self.qty, (inverse, tou), qty)
        self.row_of = dict(zip(unique.tolist(), range(len(unique)), strict=True))
        self.row_totals = self.qty.sum(axis=1).tolist()
        self.periods: dict[int, dict[int, int]] = {}  # source meter -> {start: end}
        of_source = first[np.isin(self.meter[first], np.fromiter(sources, np.int64, len(sources)))]
        for m, start, end in zip(self.meter[of_source].tolist(), self.start[of_source].tolist(),
                                 self.end[of_source].tolist(), strict=True):
            self.periods.setdefault(m, {})[start] = end

    def row(self, meter: int, start: int) -> int:
        """Row of (meter, period) in `qty`, -1 if the meter has no consumption then."""
        return self.row_of.get(period_key(meter, start), -1)

    def total(self, meter: int, start: int) -> int:
        r = self.row_of.get(period_key(meter, start), -1)
        return 0 if r < 0 else self.row_totals[r]

    def vector(self, meter: int, start: int) -> np.ndarray:
        """Quantity per TOU index of (meter, period); zeros if none."""
        r = self.row(meter, start)
        return np.zeros(self.qty.shape[1], dtype=np.int64) if r < 0 else self.qty[r]


def _tou_index(table: pa.Table, config: Config) -> np.ndarray:
    """Position of each row's tou_period in its tariff version's TOU periods."""
    names = table.column("tou_period").fill_null("")
    keys = pc.binary_join_element_wise(
        table.column("tariff_id"), table.column("period_start").cast(pa.string()), names, "\x1f"
    ).combine_chunks().dictionary_encode()
    lookup = []
    for key in keys.dictionary.to_pylist():
        tariff_id, start, name = key.split("\x1f")
        periods = _tou_names(config, tariff_id, dt.date.fromisoformat(start))
        if name not in periods:
            raise InputError(f"consumption: TOU period {name!r} is not in tariff {tariff_id!r}")
        lookup.append(periods.index(name))
    return np.asarray(lookup, dtype=np.int64)[keys.indices.to_numpy()]


def _tou_names(config: Config, tariff_id: str, day: dt.date) -> list[str]:
    version = config.tariffs[tariff_id].version_on(day)
    return [p.name for p in version.tou.periods] if version.tou else [""]


class RegistryView:
    """Registry look-ups shared by every group of one `prepare` call."""

    def __init__(self, config: Config, groups: Groups):
        self.config = config
        self.registry = registry = config.registry
        self.rank = {a: i for i, a in enumerate(sorted(registry.accounts))}
        self.index_by_text = {str(m.meter_id): i for i, m in enumerate(registry.meters)}
        self._tou_names: dict[tuple[str, int], list[str]] = {}
        self.meters_of: dict[str, list[int]] = {}
        for i in sorted(range(len(registry.meters)), key=lambda i: _id_order(registry.meters[i].meter_id)):
            self.meters_of.setdefault(registry.meters[i].account_id, []).append(i)
        self.sources = {g.group_id: self.meter_indices(g.source_meters, g) for g in groups}
        self.all_sources = {m for meters in self.sources.values() for m in meters}

    def meter_indices(self, ids, group: Group) -> list[int]:
        """Registry indices of meter ids given as text (a file) or as the registry's own ids."""
        found = []
        for meter_id in ids:
            index = self.index_by_text.get(str(meter_id))
            if index is None:
                raise InputError(
                    f"meter {meter_id!r} is not in the registry", where=f"group {group.group_id!r}"
                )
            found.append(index)
        return found

    def tou_names(self, meter: int, start: int) -> list[str]:
        """TOU period names of the meter's tariff version in force on day `start`."""
        key = (self.registry.meters[meter].tariff_id, start)
        names = self._tou_names.get(key)
        if names is None:
            day = date_of(start)
            names = self._tou_names[key] = _tou_names(self.config, key[0], day)
        return names

    def unit(self, meter: int) -> str:
        return self.registry.meters[meter].unit

    def account(self, meter: int) -> str:
        return self.registry.meters[meter].account_id

    def own_meters(self, account: str, unit: str) -> list[int]:
        """The account's meters of that unit that are no group's source, lowest id first."""
        return [
            m for m in self.meters_of.get(account, [])
            if self.unit(m) == unit and m not in self.all_sources
        ]


def _id_order(meter_id) -> tuple:
    return (0, meter_id, "") if isinstance(meter_id, int) else (1, 0, str(meter_id))


class GroupAnomalies:
    def __init__(self):
        self.rows: list[tuple] = []

    def add(self, group: Group, start: int | None, end: int | None, code: str, action: str,
            account: str | None = None, meter=None) -> None:
        self.rows.append((group.group_id, start, None if end is None else end - 1, account, meter, code,
                          ANOMALY_REASONS[code], action))

    def table(self, meter_id_type: pa.DataType) -> pa.Table:
        schema = apportion_anomalies_schema(meter_id_type)
        columns = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(schema)
        return pa.Table.from_arrays(
            [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
        )


class Delta:
    """Quantities to add per (meter, period) and TOU index before pricing."""

    def __init__(self, width: int):
        self.width = width
        self.rows: dict[tuple[int, int], tuple[int, np.ndarray]] = {}

    def add(self, meter: int, start: int, end: int, qty: np.ndarray) -> None:
        if not qty.any():
            return
        row = self.rows.get((meter, start))
        if row is None:
            row = self.rows[(meter, start)] = (end, np.zeros(self.width, dtype=np.int64))
        row[1][: len(qty)] += qty

    def periods(self) -> PeriodQuantities:
        keys = sorted(self.rows)
        return PeriodQuantities(
            meter_index=np.array([k[0] for k in keys], dtype=np.int32),
            period_start=np.array([k[1] for k in keys], dtype=np.int32),
            period_end=np.array([self.rows[k][0] for k in keys], dtype=np.int32),
            qty=np.array([self.rows[k][1] for k in keys], dtype=np.int64).reshape(len(keys), self.width),
        )


