"""Read a bank statement file of any supported format into checked Statements."""

from __future__ import annotations

import re
from pathlib import Path

from rating.payments.camt053 import parse_camt053
from rating.payments.csv_statement import CsvLayout, parse_csv
from rating.payments.errors import StatementError
from rating.payments.mt940_statement import parse_mt940
from rating.payments.statement import Statement

FORMATS = ("camt.053", "mt940", "csv")
STATEMENT_FILE_BYTES_MAX = 256 * 1024 * 1024  # a parsed CAMT tree takes about 10x its file
_MT940_START = re.compile(rb"(?m)^(\{1:[^\n]*\n)?:20:")


_SUFFIXES = {".xml": "camt.053", ".053": "camt.053", ".sta": "mt940", ".940": "mt940",
             ".mt940": "mt940", ".csv": "csv"}


def detect_format(data: bytes, file: str = "") -> str:
    """The format a file's name says (.xml, .sta/.940, .csv), else by its content:
    'camt.053' for XML, 'mt940' for SWIFT tags, otherwise 'csv'."""
    suffix = Path(file).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "camt.053"
    if head.startswith(b"{1:") or _MT940_START.search(head):
        return "mt940"
    return "csv"


def parse_statements(data: bytes, *, file: str, format: str | None = None,
                     layout: CsvLayout | None = None, opening_minor: int | None = None,
                     closing_minor: int | None = None) -> list[Statement]:
    """Every statement of one file, or a StatementError and nothing.

    `format` is one of FORMATS, detected from `file` and `data` when None; a CSV needs its `layout`
    (and `opening_minor`/`closing_minor` when the layout has no balance column).
    """
    if len(data) > STATEMENT_FILE_BYTES_MAX:
        raise StatementError(f"larger than {STATEMENT_FILE_BYTES_MAX} bytes", file=file,
                             reason="LIMIT_EXCEEDED")
    format = format or detect_format(data, file)
    if format == "camt.053":
        return parse_camt053(data, file=file)
    if format == "mt940":
        # SWIFT's character set is ASCII; banks that stray use Latin-1, which cannot fail
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        return parse_mt940(text, file=file)
    if format == "csv":
        if layout is None:
            raise StatementError("a CSV statement needs its column layout", file=file,
                                 reason="BAD_CONFIG")
        return parse_csv(data, layout, file=file, opening_minor=opening_minor,
                         closing_minor=closing_minor)
    raise StatementError(f"unknown statement format {format!r}; known: {', '.join(FORMATS)}",
                         file=file, reason="BAD_CONFIG")


def read_statements(path: str | Path, *, format: str | None = None, layout: CsvLayout | None = None,
                    opening_minor: int | None = None, closing_minor: int | None = None
                    ) -> list[Statement]:
    """`parse_statements` of the file at `path` (its name in any error)."""
    path = Path(path)
    if path.stat().st_size > STATEMENT_FILE_BYTES_MAX:
        raise StatementError(f"larger than {STATEMENT_FILE_BYTES_MAX} bytes", file=path.name,
                             reason="LIMIT_EXCEEDED")
    return parse_statements(path.read_bytes(), file=path.name, format=format, layout=layout,
                            opening_minor=opening_minor, closing_minor=closing_minor)
