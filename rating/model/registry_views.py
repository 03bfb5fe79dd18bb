"""`registry.meters` and `registry.accounts` for the callers that want objects
(the Decimal reference, error messages, bill runs, the CLI's summaries):
built from the columns on first use, never on the load or rating path.

A registry built in code keeps the objects it was given; one loaded from
files builds one object when indexed and all of them, once, when iterated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import overload

from rating.model.registry_columns import AccountColumns, MeterColumns
from rating.model.registry_rows import Account, Meter

_METER_FIELDS = tuple(f.name for f in fields(Meter))
_ACCOUNT_FIELDS = ("account_id", "name", "area", "tariff_id", "active_from", "active_until", "tenant",
                   "bill_to", "address", "occupancy", "tags", "email", "phone")


class MeterRows(Sequence[Meter]):
    """The meters in registry order, as Meter objects."""

    def __init__(self, columns: MeterColumns, given: Sequence[Meter] | None):
        self._columns = columns
        self._rows = list(given) if given is not None else None

    def __len__(self) -> int:
        return len(self._columns)

    @overload
    def __getitem__(self, index: int) -> Meter: ...
    @overload
    def __getitem__(self, index: slice) -> list[Meter]: ...

    def __getitem__(self, index):
        if self._rows is not None or isinstance(index, slice):
            return self._all()[index]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return Meter(*(getattr(self._columns, name)[index].as_py() for name in _METER_FIELDS))

    def __iter__(self) -> Iterator[Meter]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:  # compares as the list it stands for
        return isinstance(other, Sequence) and self._all() == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def _all(self) -> list[Meter]:
        if self._rows is None:
            values = [getattr(self._columns, name).to_pylist() for name in _METER_FIELDS]
            self._rows = [Meter(*row) for row in zip(*values, strict=True)]
        return self._rows


class AccountRows(Mapping[str, Account]):
    """The accounts by account_id, in registry order, as Account objects;
    `position(account_id)` (-1: unknown) finds a row without building any."""

    def __init__(self, columns: AccountColumns, given: Sequence[Account] | None,
                 position: Callable[[str], int]):
        self._columns = columns
        self._rows = list(given) if given is not None else None
        self.position = position

    def __len__(self) -> int:
        return len(self._columns)

    def __iter__(self) -> Iterator[str]:
        if self._rows is not None:
            return (a.account_id for a in self._rows)
        return iter(self._columns.account_id.to_pylist())

    def __contains__(self, account_id: object) -> bool:
        return isinstance(account_id, str) and self.position(account_id) >= 0

    def __getitem__(self, account_id: str) -> Account:
        row = self.position(account_id) if isinstance(account_id, str) else -1
        if row < 0:
            raise KeyError(account_id)
        return self.at(row)

    def at(self, row: int) -> Account:
        """The account in registry row `row` (from 0)."""
        if self._rows is not None:
            return self._rows[row]
        columns = self._columns
        return _account(columns, [getattr(columns, name)[row].as_py() for name in _ACCOUNT_FIELDS],
                        int(columns.cycle_code[row]))

    def values(self):  # type: ignore[override]  # a list: iterated often, built once
        if self._rows is None:
            columns = self._columns
            values = [getattr(columns, name).to_pylist() for name in _ACCOUNT_FIELDS]
            rows = zip(*values, columns.cycle_code.tolist(), strict=True)
            self._rows = [_account(columns, row[:-1], row[-1]) for row in rows]
        return self._rows


def _account(columns: AccountColumns, values: Sequence, code: int) -> Account:
    """An Account of its column values (in _ACCOUNT_FIELDS order) and cycle code."""
    plain = dict(zip(_ACCOUNT_FIELDS, values, strict=True))
    tags = frozenset(plain.pop("tags").split())
    return Account(**plain, tags=tags, cycle=None if code < 0 else columns.cycles[code])
