"""Bank statements exported as CSV, read by a layout that names the bank's columns.

Banks' CSV exports differ in everything: column names, one signed amount or
separate debit and credit columns, "1,23,456.78" or "1.234,56", day-first
dates, a running balance or none, newest line first. `CsvLayout` says which;
the reader refuses a cell it cannot read exactly, naming file, row and column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from rating.payments.errors import StatementError
from rating.payments.money import minor_unit_exponent, to_minor
from rating.payments.statement import (
    Counterparty,
    Entry,
    References,
    Statement,
    StatementIdentity,
    check_balances,
    clean,
)

_DIRECTION_SUFFIX = re.compile(r"(.*?)\s*\b(CR|DR)\.?$", re.IGNORECASE)  # "1,234.00 Cr"
CSV_ROWS_MAX = 2_000_000


@dataclass(frozen=True)
class CsvLayout:
    """Where a bank's CSV export keeps each field.

    Column settings are header names. Either `amount` (signed: negative is a
    debit) or both `debit` and `credit` (unsigned; one of them filled per row).
    An amount or balance cell may end in "Cr"/"Dr" (a debit when "Dr").
    Without a `balance` column the statement's opening and closing balances
    must be given to `parse_csv`, so the file can still be checked to add up.
    """

    account: str  # the account the export is of: CSV files rarely say
    currency: str
    date: str
    amount: str | None = None
    debit: str | None = None
    credit: str | None = None
    balance: str | None = None
    value_date: str | None = None
    reference: str | None = None  # the bank's reference for the line: UTR, cheque number
    narration: str | None = None  # free text: the payer's remarks
    counterparty: str | None = None
    date_format: str = "%Y-%m-%d"
    decimal_separator: str = "."
    thousands_separator: str = ""
    delimiter: str = ","
    skip_lines: int = 0  # lines above the header row (bank name, period, ...)
    newest_first: bool = False
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.debit is None and self.credit is None) \
                or (self.debit is None) != (self.credit is None):
            raise StatementError("a CSV layout has either an amount column or both debit and credit "
                                 "columns", field="layout", reason="BAD_CONFIG")
        if self.decimal_separator not in (".", ","):
            raise StatementError("decimal_separator is '.' or ','", field="layout.decimal_separator",
                                 reason="BAD_CONFIG")
        if self.thousands_separator not in ("", ",", ".", " ", "'") \
                or self.thousands_separator == self.decimal_separator:
            raise StatementError("thousands_separator is '', ',', '.', ' ' or \"'\", other than the "
                                 "decimal separator", field="layout.thousands_separator",
                                 reason="BAD_CONFIG")
        if len(self.delimiter) != 1 or self.skip_lines < 0:
            raise StatementError("delimiter is one character and skip_lines >= 0", field="layout",
                                 reason="BAD_CONFIG")
        minor_unit_exponent(self.currency, field="layout.currency")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], *, where: str = "layout") -> CsvLayout:
        """A layout from a configuration table (a site file's [bank.csv] section)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise StatementError(f"unknown CSV layout settings {', '.join(unknown)}; known: "
                                 f"{', '.join(sorted(known))}", field=where, reason="BAD_CONFIG")
        try:
            return cls(**mapping)  # type: ignore[arg-type]
        except TypeError as e:
            raise StatementError(str(e), field=where, reason="BAD_CONFIG") from None

    def columns(self) -> list[str]:
        return [c for c in (self.date, self.amount, self.debit, self.credit, self.balance,
                            self.value_date, self.reference, self.narration, self.counterparty) if c]


def parse_csv(data: bytes, layout: CsvLayout, *, file: str, opening_minor: int | None = None,
              closing_minor: int | None = None) -> list[Statement]:
    """The one statement of a CSV export, checked to add up.

    With a balance column every row's balance must be the one before it plus
    its amount; `opening_minor`/`closing_minor`, when given, must agree too.
    """
    try:
        text = data.decode(layout.encoding)
    except UnicodeDecodeError as e:
        raise StatementError(f"not {layout.encoding} text at byte {e.start}", file=file,
                             reason="BAD_FORMAT") from None
    rows = _rows(text.removeprefix("\ufeff"), layout, file)
    if not rows:
        raise StatementError("no lines below the header", file=file, reason="BAD_FORMAT")
    if layout.newest_first:
        rows.reverse()
    entries = tuple(_entry(i, row, layout, file) for i, row in enumerate(rows, 1))
    first, last = entries[0].booking_date, entries[-1].booking_date
    if any(a.booking_date > b.booking_date for a, b in zip(entries, entries[1:], strict=False)):
        order = "newest first" if layout.newest_first else "oldest first"
        raise StatementError(f"lines are not in date order ({order}, as the layout says)", file=file,
                             column=layout.date, reason="BAD_FORMAT")
    identity = StatementIdentity(layout.account.replace(" ", "").upper(), f"{first}..{last}", None)
    opening, closing = _balances(rows, entries, layout, file, identity, opening_minor, closing_minor)
    statement = Statement(source="csv", identity=identity, currency=layout.currency,
                          opening_minor=opening, closing_minor=closing, opening_date=first,
                          closing_date=last, entries=entries)
    check_balances([statement], file=file)
    return [statement]


def _rows(text: str, layout: CsvLayout, file: str) -> list[tuple[int, dict[str, str]]]:
    """(file line, {column: cell}) of each data row; blank rows skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
    try:
        for _ in range(layout.skip_lines):
            next(reader, None)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in layout.columns() if c not in header]
        if missing:
            raise StatementError(f"no column {', '.join(map(repr, missing))} in the header "
                                 f"{header}", file=file, row=reader.line_num, column=missing[0],
                                 reason="BAD_FORMAT")
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise StatementError(f"{len(cells)} cells, the header has {len(header)}", file=file,
                                     row=reader.line_num, reason="BAD_FORMAT")
            if len(rows) >= CSV_ROWS_MAX:
                raise StatementError(f"more than {CSV_ROWS_MAX} lines", file=file,
                                     row=reader.line_num, reason="LIMIT_EXCEEDED")
            rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    except csv.Error as e:
        raise StatementError(f"not readable as CSV ({e})", file=file, row=reader.line_num,
                             reason="BAD_FORMAT") from None
    return rows


def _entry(index: int, row: tuple[int, dict[str, str]], layout: CsvLayout, file: str) -> Entry:
    line, cells = row
    place: dict[str, Any] = {"file": file, "row": line}

    def cell(column: str | None) -> str | None:
        return clean(cells[column]) if column else None

    if layout.amount is not None:
        amount = _amount(cell(layout.amount), layout, **place, column=layout.amount)
    else:
        amount = _debit_credit(cell(layout.debit), cell(layout.credit), layout, place)
    value_text = cell(layout.value_date)
    name = cell(layout.counterparty)
    return Entry(
        index=index,
        booking_date=_date(cell(layout.date), layout, **place, column=layout.date),
        value_date=_date(value_text, layout, **place, column=layout.value_date) if value_text else None,
        amount_minor=amount, currency=layout.currency,
        references=References(transaction_id=cell(layout.reference),
                              remittance=cell(layout.narration)),
        counterparty=Counterparty(name) if name else None)


def _debit_credit(debit: str | None, credit: str | None, layout: CsvLayout,
                  place: dict[str, Any]) -> int:
    assert layout.debit is not None and layout.credit is not None
    out = _amount(debit, layout, **place, column=layout.debit) if debit else 0
    into = _amount(credit, layout, **place, column=layout.credit) if credit else 0
    if out < 0 or into < 0:
        raise StatementError("a debit or credit column holds a negative amount", **place,
                             column=layout.debit if out < 0 else layout.credit)
    if bool(out) == bool(into):
        raise StatementError(f"{'both' if out else 'neither'} of {layout.debit!r} and "
                             f"{layout.credit!r} hold an amount", **place, column=layout.debit)
    return into - out


def _amount(text: str | None, layout: CsvLayout, **place: Any) -> int:
    """A cell as minor units: separators as the layout says, an optional Cr/Dr suffix."""
    if not text:
        raise StatementError("empty amount", **place)
    body, sign = text, 1
    suffix = _DIRECTION_SUFFIX.fullmatch(text)
    if suffix:
        body, sign = suffix[1], -1 if suffix[2].upper() == "DR" else 1
        if body.startswith(("-", "+")):
            raise StatementError(f"amount {text!r} has both a sign and Cr/Dr", **place)
    sep = layout.thousands_separator
    if sep:
        whole, _, fraction = body.partition(layout.decimal_separator)
        if re.fullmatch(rf"[+-]?\d+({re.escape(sep)}\d+)*", whole) is None:
            why = f"misplaced thousands separator {sep!r}" if sep in whole else "not a decimal number"
            raise StatementError(f"amount {text!r}: {why}", **place)
        body = whole.replace(sep, "") + (layout.decimal_separator + fraction if fraction else "")
    if layout.decimal_separator == ",":
        if "." in body:
            raise StatementError(f"amount {text!r} has a '.' but the decimal separator is ','", **place)
        body = body.replace(",", ".")
    return sign * to_minor(body, layout.currency, **place)


def _date(text: str | None, layout: CsvLayout, **place: Any) -> date:
    try:
        return datetime.strptime(text or "", layout.date_format).date()
    except ValueError:
        raise StatementError(f"date {text!r} does not match {layout.date_format!r}", **place) from None


def _balances(rows: list[tuple[int, dict[str, str]]], entries: tuple[Entry, ...], layout: CsvLayout,
              file: str, identity: StatementIdentity, opening_minor: int | None,
              closing_minor: int | None) -> tuple[int, int]:
    """(opening, closing): from the running balance, checked row by row, or as given."""
    if layout.balance is None:
        if opening_minor is None or closing_minor is None:
            raise StatementError("the layout has no balance column: give the statement's opening and "
                                 "closing balances", file=file, statement=identity, reason="BAD_CONFIG")
        return opening_minor, closing_minor
    balances = [_amount(clean(cells[layout.balance]), layout, file=file, row=line, column=layout.balance)
                for line, cells in rows]
    running = balances[0] - entries[0].amount_minor
    opening = running
    for (line, _), entry, balance in zip(rows, entries, balances, strict=True):
        running += entry.amount_minor
        if balance != running:
            raise StatementError(f"balance {balance} is not the balance before plus the line's amount "
                                 f"({running}, minor units)", file=file, statement=identity,
                                 entry=entry.index, row=line, column=layout.balance,
                                 reason="BALANCE_MISMATCH")
    for given, name, mine in ((opening_minor, "opening", opening), (closing_minor, "closing", running)):
        if given is not None and given != mine:
            raise StatementError(f"the {name} balance given, {given}, is not the file's {mine}", file=file,
                                 statement=identity, column=layout.balance, reason="BALANCE_MISMATCH")
    return opening, running
