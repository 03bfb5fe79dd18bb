"""Which statements were imported: a re-import is recognised, a conflicting one refused.

`admit` decides, for statements just read from a file, which are new and
which were imported before (same identity, same digest: importing them again
changes nothing), and refuses a statement whose id was seen with other
contents, or whose balances do not chain onto what was imported before. The
registry itself is a narrow interface: `MemoryStatementRegistry` here; the
payments ledger keeps its marks in its own tables, in the transaction that
books the statement's lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from rating.payments.errors import StatementConflict, StatementError
from rating.payments.statement import Statement, StatementIdentity


@dataclass(frozen=True, slots=True)
class StatementMark:
    """What a registry keeps of an imported statement."""

    identity: StatementIdentity
    digest: str
    source: str
    sequence_key: tuple[int, ...] | None
    opening_minor: int
    closing_minor: int
    first_date: date | None
    last_date: date | None

    @classmethod
    def of(cls, s: Statement) -> StatementMark:
        return cls(s.identity, s.digest(), s.source, s.sequence_key, s.opening_minor, s.closing_minor,
                   s.opening_date, s.closing_date)

    def order(self) -> tuple[date, tuple[int, ...]]:
        """Position among an account's statements: last date, then sequence."""
        return (self.last_date or date.min, self.sequence_key or ())


class StatementRegistry(Protocol):
    def find(self, identity: StatementIdentity) -> StatementMark | None:
        """The mark recorded under `identity`, if any."""

    def marks(self, account: str) -> Sequence[StatementMark]:
        """Every mark of `account`."""

    def add(self, marks: Sequence[StatementMark]) -> None:
        """Record `marks`, all or none (a ledger does it in the import's transaction)."""


class MemoryStatementRegistry:
    """A registry in a dict: for the embedded service's tests and one-off runs."""

    def __init__(self) -> None:
        self._marks: dict[StatementIdentity, StatementMark] = {}

    def find(self, identity: StatementIdentity) -> StatementMark | None:
        return self._marks.get(identity)

    def marks(self, account: str) -> Sequence[StatementMark]:
        return [m for m in self._marks.values() if m.identity.account == account]

    def add(self, marks: Sequence[StatementMark]) -> None:
        self._marks.update((m.identity, m) for m in marks)


@dataclass(frozen=True, slots=True)
class Admission:
    new: list[Statement]  # to book
    known: list[Statement]  # imported before, identical: nothing to do


def admit(statements: Sequence[Statement], registry: StatementRegistry, *, file: str) -> Admission:
    """Sort a file's statements into new and already imported, or refuse the file.

    Refused (StatementConflict / StatementError, nothing recorded): a known
    identity with another digest; a new statement whose opening is not the
    closing of the account's statement recorded just before it, or whose
    closing is not the opening of the one just after; a CSV whose dates
    overlap a CSV imported before (exports must not share a day). `admit`
    does not record: the caller adds `StatementMark.of(s)` for `new` when it
    has booked them.
    """
    new, known = [], []
    for s in statements:
        mark = registry.find(s.identity)
        if mark is None:
            new.append(s)
        elif mark.digest == s.digest():
            known.append(s)
        else:
            raise StatementConflict("imported before with other contents (another balance, date or "
                                    "amount): the bank re-issued it, or the file was changed",
                                    file=file, statement=s.identity)
    for s in new:
        _check_neighbours(StatementMark.of(s), registry.marks(s.account), file=file)
    return Admission(new, known)


def _check_neighbours(mark: StatementMark, recorded: Sequence[StatementMark], *, file: str) -> None:
    place: dict[str, Any] = {"file": file, "statement": mark.identity, "reason": "BALANCE_MISMATCH"}
    before = [m for m in recorded if m.order() < mark.order()]
    after = [m for m in recorded if m.order() > mark.order()]
    if before:
        prev = max(before, key=StatementMark.order)
        if prev.closing_minor != mark.opening_minor:
            raise StatementError(f"opening balance {mark.opening_minor} is not the closing balance "
                                 f"{prev.closing_minor} of {prev.identity}, imported before "
                                 "(a statement between them missing?)", **place, field="opening balance")
    if after:
        succ = min(after, key=StatementMark.order)
        if succ.opening_minor != mark.closing_minor:
            raise StatementError(f"closing balance {mark.closing_minor} is not the opening balance "
                                 f"{succ.opening_minor} of {succ.identity}, imported before",
                                 **place, field="closing balance")
    if mark.source == "csv":
        for m in recorded:
            if m.source == "csv" and m.first_date and m.last_date and mark.first_date and \
                    mark.last_date and m.first_date <= mark.last_date and mark.first_date <= m.last_date:
                raise StatementError(f"dates {mark.identity.statement_id} overlap the CSV statement "
                                     f"{m.identity}, imported before", **place, field="dates")
