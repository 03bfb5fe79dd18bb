"""Number plates: which account (a resident's flat, several cars each) or
visitor each plate is, and its parking tariff; read from a table with columns
`plate`, `kind` (`resident` or `visitor`), `account_id` (a visitor's host, may
be blank) and `tariff_id`.

Plates compare in one spelling (`normalise`): upper case, without spaces,
hyphens or dots, so the camera's "ka-01 ab 1234" is the file's "KA01AB1234".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import InputError
from rating.inputs import cells
from rating.inputs.tables import read_table

PLATE_KINDS = ("resident", "visitor")


@dataclass(frozen=True)
class Plates:
    plates: pa.Array  # string, normalised, unique
    kinds: pa.Array  # string, PLATE_KINDS
    account_ids: pa.Array  # string, null for a visitor without a host
    tariff_ids: pa.Array  # string
    tariff_index: np.ndarray  # int32, index into `tariff_order`
    tariff_order: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.plates)

    def index_of(self, plates: pa.Array) -> np.ndarray:
        """int32 index of each (normalised) plate, -1 where unknown or null."""
        found = pc.index_in(plates, value_set=self.plates)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def visitor_plates(plates: Plates) -> bool:
    return bool(pc.any(pc.equal(plates.kinds, "visitor")).as_py())


def normalise(plates: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_upper(plates), pattern=r"[\s.\-]+", replacement="")


def plates_from_table(table: pa.Table, tariff_ids: tuple[str, ...], *, where: str) -> Plates:
    """Checked plates; an error names `where`, the row and the column."""
    columns = {}
    for name in ("plate", "kind", "account_id", "tariff_id"):
        array = cells.text(table, name, where=where)
        if array is None:
            raise InputError(f"missing column {name!r} (needs plate, kind, account_id, tariff_id)",
                             where=where, file=where, column=name)
        columns[name] = array
    plates = normalise(columns["plate"])
    cells.present(plates, where=where, name="plate")
    cells.refuse(pc.equal(pc.utf8_length(plates), 0), columns["plate"], where, "plate",
                 lambda value: f"plate {value!r} has no letters or digits")
    cells.unique(plates, where=where, name="plate")
    for name, options in (("kind", PLATE_KINDS), ("tariff_id", tariff_ids)):
        cells.present(columns[name], where=where, name=name)
        cells.one_of(columns[name], options, where=where, name=name)
    residents = pc.equal(columns["kind"], "resident")
    cells.refuse(pc.and_(residents, columns["account_id"].is_null()), columns["account_id"], where,
                 "account_id", lambda _: "a resident's plate needs its account_id")
    index = pc.index_in(columns["tariff_id"], value_set=pa.array(tariff_ids)).to_numpy(zero_copy_only=False)
    return Plates(plates, columns["kind"], columns["account_id"], columns["tariff_id"],
                  index.astype(np.int32), tariff_ids)


def load_plates(path, tariff_ids: tuple[str, ...]) -> Plates:
    return plates_from_table(read_table(path, strings=True), tariff_ids, where=str(path))
