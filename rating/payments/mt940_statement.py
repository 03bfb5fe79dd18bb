"""SWIFT MT940 (customer statement) files, read with the `mt-940` package.

`mt-940` knows the tag grammar and the banks' variants of it (structured
:86: sub-fields, entry dates across a year end); this module turns its output
into Statements and is strict where it is lenient: every :61: line must parse,
every statement needs :20:, :25:, :28C:, an opening (:60F:/:60M:) and a closing
(:62F:/:62M:) balance, and the balances must add up.
"""

from __future__ import annotations

import logging
import re
from datetime import date
from decimal import Decimal
from typing import Any

import mt940

from rating.payments.errors import StatementError
from rating.payments.money import to_minor
from rating.payments.statement import (
    Counterparty,
    Entry,
    References,
    Statement,
    StatementIdentity,
    check_balances,
    clean,
)

# the package's fixes that 5.0.0 lacked: a reversal of a credit (RC) is a debit, a
# lowercase mark counts, a BOM does not hide the first :20:, long :86: texts are kept
# whole, a structured :86: does not erase the :61: customer reference, ?31 is an IBAN
OPTIONS = mt940.Options(reversal_sign=True, case_insensitive_marks=True, strip_bom=True,
                        unbounded_details=True, merge_keeps_values=True, applicant_iban=True)
# mt-940 logs each tag it cannot match before raising; the raised error is what we report
logging.getLogger("mt940").addHandler(logging.NullHandler())

_MESSAGE_START = re.compile(r"(?m)^(?=:20:)")
_SWIFT_TRAILER = re.compile(r"(?m)^-\}.*$")  # end of a SWIFT block 4 (and block 5 after it)
_STATEMENT_LINE = re.compile(r"(?m)^:61:")
_SEQUENCE = re.compile(r"(\d{1,5})(?:/(\d{1,5}))?")


def parse_mt940(text: str, *, file: str) -> list[Statement]:
    """The statements of an MT940 file (one per :20: message), each checked to add up.

    Raises StatementError naming `file`, the statement (:20:), the entry (the
    n-th :61: of the statement), the tag and the line of the file.
    """
    text = _SWIFT_TRAILER.sub("", text.removeprefix("\ufeff").replace("\r\n", "\n"))
    statements = []
    offset = 0
    for block in _MESSAGE_START.split(text):
        if block.startswith(":20:"):
            statements.append(_statement(block, text, offset, file))
        offset += len(block)
    if not statements:
        raise StatementError("no :20: message in the file", file=file, field=":20:", reason="BAD_FORMAT")
    check_balances(statements, file=file)
    return statements


def _statement(block: str, text: str, offset: int, file: str) -> Statement:
    reference = clean(block[4:].split("\n", 1)[0]) or ""
    parsed = mt940.models.Transactions(options=OPTIONS)
    try:
        parsed.parse(block)
    except (RuntimeError, ArithmeticError, ValueError) as e:  # a tag, amount or date it cannot read
        _refuse(block, reference, text, offset, file, e)
    data = parsed.data
    account = clean(data.get("account_identification"))
    number = data.get("statement_number")
    sequence = f"{number}/{data['sequence_number']}" if data.get("sequence_number") else number
    identity = StatementIdentity((account or "").replace(" ", "").upper(), reference, sequence)
    place: dict[str, Any] = {"file": file, "statement": identity}
    if not reference:
        raise StatementError("empty :20: reference", **place, field=":20:")
    if not account:
        raise StatementError("no :25: account", **place, field=":25:")
    match = _SEQUENCE.fullmatch(sequence or "")
    if match is None:
        raise StatementError("no :28C: statement number", **place, field=":28C:")
    opening = _balance(data, ("final_opening_balance", "intermediate_opening_balance"), ":60F:", place)
    closing = _balance(data, ("final_closing_balance", "intermediate_closing_balance"), ":62F:", place)
    currency = opening[2]
    if closing[2] != currency:
        raise StatementError(f"closing balance in {closing[2]}, opening in {currency}", **place,
                             field=":62F:")
    lines = len(_STATEMENT_LINE.findall(block))
    if lines != len(parsed.transactions):
        raise StatementError(f"{lines} :61: lines but {len(parsed.transactions)} read", **place,
                             field=":61:")
    entries = tuple(_entry(t.data, i, currency, place) for i, t in enumerate(parsed.transactions, 1))
    return Statement(source="mt940", identity=identity, currency=currency,
                     opening_minor=opening[0], closing_minor=closing[0], opening_date=opening[1],
                     closing_date=closing[1], entries=entries,
                     sequence_key=tuple(int(g) for g in match.groups() if g is not None))


_TAG = re.compile(r"(?m)^:(\d\d)([A-Z]?):")


def _refuse(block: str, reference: str, text: str, offset: int, file: str, error: Exception) -> None:
    """Raise the StatementError for the first tag of `block` that mt-940 cannot read,
    found by reading the tags one at a time (only once a message failed)."""
    tags = list(_TAG.finditer(block))
    entry = 0
    for n, match in enumerate(tags):
        number, letter = match.groups()
        entry += number == "61"
        tag = mt940.tags.TAG_BY_ID.get(number + letter) or mt940.tags.TAG_BY_ID.get(int(number))
        end = tags[n + 1].start() if n + 1 < len(tags) else len(block)
        value = "\n".join(line.rstrip() for line in block[match.end():end].strip().split("\n"))
        if tag is None:
            continue
        alone = mt940.models.Transactions(options=OPTIONS)
        try:
            tag(alone, tag.parse(alone, value))
        except (RuntimeError, ArithmeticError, ValueError):
            row = text.count("\n", 0, offset + match.start()) + 1
            raise StatementError(f":{number}{letter}: {value!r} cannot be read", file=file,
                                 statement=reference, entry=entry if number == "61" else None,
                                 field=f":{number}{letter}:", row=row, reason="BAD_FORMAT") from None
    raise StatementError(f"unreadable message ({error})", file=file, statement=reference,
                         reason="BAD_FORMAT") from None


def _balance(data: dict[str, Any], keys: tuple[str, str], tag: str, place: dict[str, Any]
             ) -> tuple[int, date | None, str]:
    """(signed minor units, date, currency) of the first of the balances `keys` present."""
    balance = next((data[k] for k in keys if data.get(k) is not None), None)
    if balance is None:
        raise StatementError(f"no {tag[:-2]}F:/{tag[:-2]}M: balance", **place, field=tag)
    amount = balance.amount
    if not isinstance(amount, mt940.models.Amount):
        raise StatementError("balance without an amount", **place, field=tag)
    currency = amount.currency or ""
    when = _date(balance.date) if balance.date is not None else None
    return _minor(amount.amount, currency, {**place, "field": tag}), when, currency


def _entry(data: dict[str, Any], index: int, currency: str, place: dict[str, Any]) -> Entry:
    where = {**place, "entry": index, "field": ":61:"}
    mark = str(data.get("status", "")).upper()
    amount = data["amount"]
    references = References(
        end_to_end_id=_reference(data.get("end_to_end_reference") or data.get("customer_reference")),
        bank_reference=_reference(data.get("bank_reference")),
        remittance=clean(" ".join(str(data[k]) for k in ("purpose", "transaction_details",
                                                          "extra_details") if data.get(k))))
    name, iban = clean(data.get("applicant_name")), clean(data.get("applicant_iban"))
    value_date = _date(data["date"])
    return Entry(index=index, booking_date=_date(data.get("entry_date") or value_date),
                 value_date=value_date, amount_minor=_minor(amount.amount, currency, where),
                 currency=currency, references=references,
                 counterparty=Counterparty(name, iban) if name or iban else None,
                 reversal=mark.startswith("R"))


def _reference(value: object) -> str | None:
    text = clean(str(value)) if value is not None else None
    return None if text is None or text.upper() == "NONREF" else text


def _date(value: date) -> date:
    """mt-940's Date subclass as a plain date."""
    return date(value.year, value.month, value.day)


def _minor(amount: Decimal, currency: str, where: dict[str, Any]) -> int:
    return to_minor(format(amount, "f"), currency, **where)
