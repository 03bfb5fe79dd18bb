"""Document numbers: one gap-free series per (site, document type, financial year).

A number is a template filled with the financial year and the serial, e.g.
`B/{fy}/{n:6}` gives `B/25-26/000042` for the 42nd bill of the year that
starts on 1 April 2025. At most 16 characters of letters, digits, `-` and
`/` (what GST asks of an invoice number); a template whose longest number
would be longer is refused when it is read. The ledger allocates serials
inside the transaction that issues the documents, so a rolled back issue
leaves no gap. The `[numbering]` table of billing.toml:

    [numbering]
    year_start = "04-01"          # month-day the financial year starts (default 1 April)
    bill = "B/{fy}/{n:6}"         # {fy}: 25-26, or 2025 when the year starts on 1 January
    credit_note = "CN/{fy}/{n:5}" # {n:W}: the serial, zero-padded to W digits
    debit_note = "DN/{fy}/{n:5}"
    receipt = "R/{fy}/{n:6}"      # payments: their receipts, numbered as they are recorded
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from rating.errors import ConfigError

NUMBER_CHARS_MAX = 16
_ALLOWED = re.compile(r"[A-Za-z0-9/-]*")
_FIELD = re.compile(r"\{(fy|n:(\d))\}")


class DocType(StrEnum):
    BILL = "bill"
    CREDIT_NOTE = "credit_note"
    DEBIT_NOTE = "debit_note"
    RECEIPT = "receipt"


DEFAULT_TEMPLATES = {DocType.BILL: "B/{fy}/{n:6}", DocType.CREDIT_NOTE: "CN/{fy}/{n:5}",
                     DocType.DEBIT_NOTE: "DN/{fy}/{n:5}", DocType.RECEIPT: "R/{fy}/{n:6}"}


@dataclass(frozen=True)
class Template:
    """A parsed number template: literal text around {fy} and one {n:W}."""

    text: str
    width: int

    @classmethod
    def parse(cls, text: object, *, where: str) -> Template:
        if not isinstance(text, str):
            raise ConfigError(f"a number template is text such as 'B/{{fy}}/{{n:6}}', got {text!r}",
                              where=where)
        widths = [int(m.group(2)) for m in _FIELD.finditer(text) if m.group(2)]
        literal = _FIELD.sub("", text)
        if len(widths) != 1 or not 1 <= widths[0] <= 9:
            raise ConfigError(f"template {text!r} needs exactly one serial field {{n:W}} with W 1..9",
                              where=where)
        if not _ALLOWED.fullmatch(literal):
            raise ConfigError(f"template {text!r}: a number holds only letters, digits, '-' and '/'",
                              where=where)
        template = cls(text, widths[0])
        longest = len(template.format("25-26", template.serial_max))
        if longest > NUMBER_CHARS_MAX:
            raise ConfigError(f"template {text!r} gives numbers of {longest} characters; "
                              f"at most {NUMBER_CHARS_MAX}", where=where)
        return template

    @property
    def serial_max(self) -> int:
        return 10**self.width - 1

    def format(self, fy: str, serial: int) -> str:
        return self.formatter(fy)(serial)

    def formatter(self, fy: str) -> Callable[[int], str]:
        """serial -> number in the year `fy` (the template parsed once)."""
        before, after = _FIELD.sub(lambda m: fy if m.group(1) == "fy" else "\0", self.text).split("\0")
        width = self.width
        return lambda serial: f"{before}{serial:0{width}d}{after}"


@dataclass(frozen=True)
class Numbering:
    """How a site numbers its documents."""

    year_start_month: int = 4
    year_start_day: int = 1
    templates: tuple[tuple[DocType, Template], ...] = tuple(
        (kind, Template.parse(text, where="default")) for kind, text in DEFAULT_TEMPLATES.items())

    def template(self, kind: DocType) -> Template:
        return dict(self.templates)[kind]

    def financial_year(self, day: dt.date) -> str:
        """The label of the financial year holding `day`: `25-26`, or `2025`
        when the year starts on 1 January."""
        start = (self.year_start_month, self.year_start_day)
        first = day.year if (day.month, day.day) >= start else day.year - 1
        if start == (1, 1):
            return str(first)
        return f"{first % 100:02d}-{(first + 1) % 100:02d}"


def numbering_from_mapping(data: object, *, where: str) -> Numbering:
    """The `[numbering]` table (absent: the defaults)."""
    if data is None:
        return Numbering()
    if not isinstance(data, dict):
        raise ConfigError("must be a table", where=where)
    unknown = sorted(set(data) - {"year_start", *DEFAULT_TEMPLATES})
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; known: year_start, {', '.join(DEFAULT_TEMPLATES)}",
                          where=where)
    month, day = _year_start(data.get("year_start", "04-01"), where=f"{where}.year_start")
    templates = tuple((kind, Template.parse(data.get(kind, DEFAULT_TEMPLATES[kind]), where=f"{where}.{kind}"))
                      for kind in DocType)
    return Numbering(month, day, templates)


def _year_start(value: object, *, where: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d\d)-(\d\d)", value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"give the month and day the year starts on as MM-DD, got {value!r}", where=where)
    month, day = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1 <= day <= 28):
        raise ConfigError(f"year start {value!r}: month 01..12 and day 01..28", where=where)
    return month, day
