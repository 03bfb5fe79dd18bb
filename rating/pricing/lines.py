"""Charge lines: the priced amounts as the charges table, in the documented order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating.fixedpoint import INT64_MAX, decimal_array
from rating.model.site import PRICE_DECIMALS, Site
from rating.pricing.rows import Names, Rows
from rating.schema import charges_schema

NO_TOU = -1  # tou index of lines outside any TOU period
NO_SLAB = 0  # slab number of lines outside any slab (slabs count from 1)


@dataclass(frozen=True)
class LineAmounts:
    """What each charge line charges whom, in no particular order (price_line_amounts)."""

    account_rank: np.ndarray  # int64, position of the account among the registry's sorted account ids
    meter_index: np.ndarray  # int64, registry index; -1 on an account's own lines
    amount_minor: np.ndarray  # int64


class Lines:
    """Charge lines collected as column chunks, sorted and converted at the end."""

    _COLUMNS = ("row", "rank", "component", "tou", "tou_name", "slab",
                "qty", "qty_null", "price_micro", "price_null", "amount_minor")

    def __init__(self) -> None:
        self.components = Names()
        self.tou_names = Names()
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in self._COLUMNS}

    def add(self, rows: np.ndarray, component: str, rank: int, amount_minor: np.ndarray, *,
            tou: np.ndarray | int, tou_names: tuple[str, ...], slab: np.ndarray | int,
            qty: np.ndarray | None, price_micro: np.ndarray | int | None) -> None:
        n = len(rows)
        if n == 0:
            return
        tou = np.broadcast_to(np.asarray(tou, dtype=np.int64), (n,))
        # The trailing -1 is what NO_TOU (index -1) picks: a null tou_period.
        name_codes = np.array([self.tou_names.code(name) for name in tou_names] + [-1], dtype=np.int64)
        chunk = {
            "row": rows,
            "rank": np.full(n, rank, dtype=np.int64),
            "component": np.full(n, self.components.code(component), dtype=np.int64),
            "tou": tou,
            "tou_name": name_codes[tou],
            "slab": np.broadcast_to(np.asarray(slab, dtype=np.int64), (n,)),
            "qty": np.zeros(n, dtype=np.int64) if qty is None else qty,
            "qty_null": np.full(n, qty is None),
            "price_micro": np.zeros(n, dtype=np.int64) if price_micro is None
            else np.broadcast_to(np.asarray(price_micro, dtype=np.int64), (n,)),
            "price_null": np.full(n, price_micro is None),
            "amount_minor": amount_minor,
        }
        for name in self._COLUMNS:
            self._chunks[name].append(chunk[name])

    def amounts(self, rows: Rows) -> LineAmounts:
        if not self._chunks["row"]:
            empty = np.empty(0, dtype=np.int64)
            return LineAmounts(empty, empty, empty)
        row = np.concatenate(self._chunks["row"])
        return LineAmounts(rows.account[row], rows.meter[row], np.concatenate(self._chunks["amount_minor"]))

    def table(self, rows: Rows, site: Site) -> pa.Table:
        schema = charges_schema(site, rows.registry.meter_ids.type)
        if not self._chunks["row"]:
            return schema.empty_table()
        col = {name: np.concatenate(chunks) for name, chunks in self._chunks.items()}
        order = _line_order(rows.order()[col["row"]], col["rank"], col["tou"] - NO_TOU, col["slab"])
        col = {name: values[order] for name, values in col.items() if name not in ("rank", "tou")}
        row = col["row"]
        meter = rows.meter[row]
        arrays = [
            rows.columns.account_ids.take(rows.account[row]),
            rows.registry.meter_ids.take(pa.array(meter, mask=meter < 0)),
            pa.array(rows.columns.tariff_ids, pa.string()).take(rows.tariff[row]),
            pa.array(rows.start[row].astype(np.int32), pa.date32()),
            pa.array((rows.end[row] - 1).astype(np.int32), pa.date32()),
            self.components.array().take(col["component"]),
            self.tou_names.array().take(pa.array(col["tou_name"], mask=col["tou_name"] < 0)),
            pa.array(col["slab"].astype(np.int16), mask=col["slab"] == NO_SLAB),
            decimal_array(col["qty"], site.quantity_decimals, col["qty_null"]),
            decimal_array(col["price_micro"], PRICE_DECIMALS, col["price_null"]),
            decimal_array(col["amount_minor"], site.minor_unit_exponent),
        ]
        return pa.Table.from_arrays(arrays, schema=schema)


def _line_order(*keys: np.ndarray) -> np.ndarray:
    """The permutation that sorts lines by the (non-negative) keys, first key
    first, through one packed int64 key: much faster than a lexsort."""
    key = np.zeros(len(keys[0]), dtype=np.int64)
    bound = 1
    for values in keys:
        radix = int(values.max()) + 1
        bound *= radix
        if bound > INT64_MAX:
            raise ValueError("too many charge lines to order in one call")
        key = key * radix + values
    return np.argsort(key)  # keys are distinct per line, so any sort is deterministic


