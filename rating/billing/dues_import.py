"""Unpaid dues of many units at once, from a CSV file or an XLSX workbook.

One row per due: `unit, head, amount, due_date[, note]` under a header row
(names in any case and order). The unit must be an account of the site, the
head one of its billing heads, the amount more than zero and exact at the
currency's minor unit (in major units: 1250.50), the due date a date
(YYYY-MM-DD, or a date cell). Blank rows are skipped. Every row is checked
before anything is written, and every error names the file, the row (as a
spreadsheet counts it: the header is row 1) and the column; one bad row
and nothing is imported. The import is one ledger operation keyed by the
file's content (sha-256), each entry by that and its row, so importing the
same file again changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rating.billing.ledger import DuesLedger, DuesPost, Entry, OpResult
from rating.errors import InputError
from rating.fixedpoint import exact_units
from rating.inputs.textfile import decode_utf8

COLUMNS = ("unit", "head", "amount", "due_date", "note")
REQUIRED = COLUMNS[:4]
FILE_BYTES_MAX = 64 << 20
ROWS_MAX = 1_000_000
AMOUNT_MAX_MINOR = 10**15
NOTE_CHARS_MAX = 500
ERRORS_SHOWN_MAX = 20


@dataclass(frozen=True)
class DuesFile:
    path: Path
    sha256: str
    entries: tuple[Entry, ...]

    @property
    def key(self) -> str:
        return f"import:{self.sha256}"


def read_dues(path: str | Path, *, units: set[str], heads: set[str], exponent: int) -> DuesFile:
    """Read and check every row; raise one InputError listing the bad ones."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read dues file: {exc.strerror}", where=str(path), file=path) from None
    return parse_dues(path, data, units=units, heads=heads, exponent=exponent)


def parse_dues(path: Path, data: bytes, *, units: set[str], heads: set[str], exponent: int) -> DuesFile:
    """The dues of a file's bytes (`path` names it and its suffix the format), checked as read_dues does."""
    if len(data) > FILE_BYTES_MAX:
        raise InputError(f"dues file is larger than {FILE_BYTES_MAX >> 20} MiB", where=str(path), file=path)
    digest = hashlib.sha256(data).hexdigest()
    table = _rows(path, data)
    header = next(table, None)
    if header is None:
        raise InputError("dues file is empty: give a header row unit, head, amount, due_date, note",
                         where=str(path), file=path)
    columns = _columns(path, header)
    checker = _RowChecker(path, digest, units, heads, exponent)
    entries, errors = [], []
    for row_number, row in enumerate(table, start=2):
        if row_number > ROWS_MAX + 1:
            raise InputError(f"dues file has more than {ROWS_MAX} rows", where=str(path), file=path)
        if all(_blank(value) for value in row):
            continue
        try:
            entries.append(checker.entry(row_number, {name: _cell(row, i) for name, i in columns.items()}))
        except InputError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise InputError(f"{errors[0].message}; nothing imported", where=errors[0].where, **errors[0].details)
    if errors:
        shown = "; ".join(f"{e.where}: {e.message}" for e in errors[:ERRORS_SHOWN_MAX])
        more = f" (and {len(errors) - ERRORS_SHOWN_MAX} more)" if len(errors) > ERRORS_SHOWN_MAX else ""
        raise InputError(f"{len(errors)} bad rows, nothing imported: {shown}{more}", where=errors[0].where,
                         **errors[0].details)
    if not entries:
        raise InputError("dues file has no rows under its header", where=str(path), file=path)
    return DuesFile(path, digest, tuple(entries))


async def import_dues(ledger: DuesLedger, dues: DuesFile, *, site_id: str, actor: str) -> OpResult:
    """Post the file's dues in one operation (a re-import replays the first result)."""
    detail = f"{dues.path.name}: {len(dues.entries)} rows, sha-256 {dues.sha256}"
    return await ledger.post(DuesPost(dues.key, "import", site_id, actor, dues.entries, detail))


def _rows(path: Path, data: bytes) -> Iterator[Sequence[object]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = decode_utf8(data, where=str(path), error=InputError).lstrip("\ufeff")
        return iter(csv.reader(io.StringIO(text, newline="")))
    if suffix == ".xlsx":
        return _workbook_rows(path, data)
    raise InputError(f"a dues file is .csv or .xlsx, got {suffix or 'no suffix'!r}", where=str(path),
                     file=path)


def _workbook_rows(path: Path, data: bytes) -> Iterator[Sequence[object]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"not a readable XLSX workbook: {exc}", where=str(path), file=path) from None
    try:
        sheet = book.worksheets[0]  # the first sheet holds the dues
        yield from sheet.iter_rows(values_only=True)
    finally:
        book.close()


def _columns(path: Path, header: Sequence[object]) -> dict[str, int]:
    names = [str(v).strip().lower() if v is not None else "" for v in header]
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        where = f"{path} row 1 column {i + 1}"
        if name in columns:
            raise InputError(f"column {name!r} appears twice", where=where, file=path, row=1, column=name)
        if name and name not in COLUMNS:
            raise InputError(f"unknown column {name!r}; the columns are {', '.join(COLUMNS)}", where=where,
                             file=path, row=1, column=name)
        if name:
            columns[name] = i
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; the columns are {', '.join(COLUMNS)}",
                         where=f"{path} row 1", file=path, row=1)
    return columns


def _cell(row: Sequence[object], i: int) -> object:
    return row[i] if i < len(row) else None


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _RowChecker:
    def __init__(self, path: Path, digest: str, units: set[str], heads: set[str], exponent: int):
        self.path, self.digest, self.units, self.heads, self.exponent = path, digest, units, heads, exponent

    def entry(self, row: int, cells: dict[str, object]) -> Entry:
        unit = self._text(row, "unit", cells["unit"], self.units, "an account of the site")
        head = self._text(row, "head", cells["head"], self.heads, "a billing head of the site")
        amount = self._amount(row, cells["amount"])
        due = self._date(row, cells["due_date"])
        note = "" if _blank(cells.get("note")) else str(cells.get("note")).strip()
        if len(note) > NOTE_CHARS_MAX:
            raise self._error(row, "note", f"a note is at most {NOTE_CHARS_MAX} characters")
        return Entry(unit, head, "charge", amount, due, f"IMP-{self.digest[:8]}-{row}", note)

    def _error(self, row: int, column: str, message: str) -> InputError:
        return InputError(message, where=f"{self.path} row {row} column {column}", file=self.path, row=row,
                          column=column)

    def _text(self, row: int, column: str, value: object, known: set[str], what: str) -> str:
        text = "" if value is None else str(value).strip()
        if not text:
            raise self._error(row, column, f"empty; give {what}")
        if text not in known:
            raise self._error(row, column, f"unknown {column} {text!r}: not {what}")
        return text

    def _amount(self, row: int, value: object) -> int:
        if isinstance(value, float):  # a number cell: its shortest text is what the sheet shows
            value = repr(value)
        try:
            amount = Decimal(str(value).strip()) if isinstance(value, str | int | Decimal) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise self._error(row, "amount", f"not an amount: {value!r}; give a number such as 1250.50")
        minor = exact_units(amount, self.exponent) if amount.adjusted() < 20 else None
        if minor is None:
            raise self._error(row, "amount", f"{value} has more decimals than the currency's minor unit "
                                             "or is out of range")
        if not 0 < minor <= AMOUNT_MAX_MINOR:
            raise self._error(row, "amount", f"an unpaid due is more than zero and at most "
                                             f"{AMOUNT_MAX_MINOR // 10**self.exponent}, got {value}")
        return minor

    def _date(self, row: int, value: object) -> dt.date:
        if isinstance(value, dt.datetime):
            if value.time() != dt.time():
                raise self._error(row, "due_date", f"a due date is a day, got the time {value}")
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise self._error(row, "due_date", f"not a date: {value!r}; give YYYY-MM-DD") from None
