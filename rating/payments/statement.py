"""One model for bank statements, whatever file they came from, and their balance chain.

Every parser (CAMT.053, MT940, CSV) returns `Statement`s: integer minor units,
signed (a credit adds to the account, a debit takes from it), dates as dates,
the references a payment can be recognised by. A parser returns a file's
statements only after `check_balances` accepted all of them, so nothing is
ever half-read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date

from rating.payments.errors import StatementError

_SPACES = re.compile(r"\s+")
# separators inside free text; '/', '-', '_' and '.' stay, bill numbers use them
_TOKEN_SPLIT = re.compile(r"[\s,;:()\[\]{}<>\"'+?*=|]+")


def clean(text: str | None) -> str | None:
    """`text` with runs of white space made one space, or None when empty."""
    if text is None:
        return None
    if "  " in text or "\n" in text or "\t" in text or "\r" in text:  # most fields have none
        text = _SPACES.sub(" ", text)
    return text.strip() or None


@dataclass(frozen=True, slots=True)
class References:
    """What a bank line says about the payment behind it.

    `end_to_end_id`: the payer's reference, carried unchanged by the banks
    (CAMT EndToEndId, MT940 customer reference); `transaction_id`: the
    transfer's id (CAMT TxId, an Indian UTR); `bank_reference`: the account
    bank's own (CAMT AcctSvcrRef, MT940 //reference); `creditor_reference`: a
    structured reference for the payee (CAMT CdtrRefInf/Ref); `remittance`:
    the free text (CAMT Ustrd, MT940 :86:, a CSV narration).
    """

    end_to_end_id: str | None = None
    transaction_id: str | None = None
    bank_reference: str | None = None
    creditor_reference: str | None = None
    remittance: str | None = None

    def tokens(self) -> set[str]:
        """Upper-case words a reference may be found as: each reference whole, and
        every word of the remittance text."""
        found = {r.upper() for r in (self.end_to_end_id, self.transaction_id, self.bank_reference,
                                     self.creditor_reference) if r}
        if self.remittance:
            found.update(t.strip(".").upper() for t in _TOKEN_SPLIT.split(self.remittance))
        found.discard("")
        found.discard("NOTPROVIDED")  # CAMT's placeholder EndToEndId
        found.discard("NONREF")  # MT940's
        return found


@dataclass(frozen=True, slots=True)
class Counterparty:
    name: str | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class EntryPart:
    """One payment inside a batch-booked entry (a CAMT TxDtls); `amount_minor` is
    signed like its entry, None when the bank did not give it."""

    amount_minor: int | None
    references: References
    counterparty: Counterparty | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a statement. `index` counts from 1 in file order."""

    index: int
    booking_date: date
    value_date: date | None
    amount_minor: int  # > 0 credit, < 0 debit
    currency: str
    references: References
    counterparty: Counterparty | None = None
    parts: tuple[EntryPart, ...] = ()
    booked: bool = True  # CAMT PDNG/INFO entries are not, and are not in the balances
    reversal: bool = False

    @property
    def is_credit(self) -> bool:
        return self.amount_minor > 0


@dataclass(frozen=True, slots=True, order=True)
class StatementIdentity:
    """A statement's own ids, which a re-import of the same statement repeats.

    CAMT.053: account, Stmt/Id and ElctrncSeqNb; MT940: account (:25:), :20:
    and :28C:; CSV: the account and the date range of its lines (`statement_id`
    '2026-04-01..2026-04-30', no sequence).
    """

    account: str
    statement_id: str
    sequence: str | None

    def __str__(self) -> str:
        seq = f" #{self.sequence}" if self.sequence is not None else ""
        return f"{self.account}/{self.statement_id}{seq}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of one account: its balances and lines, in minor units.

    `sequence_key` orders statements of an account (CAMT ElctrncSeqNb; MT940
    statement number and page); None when the file gives none.
    """

    source: str  # "camt.053", "mt940" or "csv"
    identity: StatementIdentity
    currency: str
    opening_minor: int
    closing_minor: int
    opening_date: date | None
    closing_date: date | None
    entries: tuple[Entry, ...] = field(repr=False)
    sequence_key: tuple[int, ...] | None = None

    @property
    def account(self) -> str:
        return self.identity.account

    def booked(self) -> Iterator[Entry]:
        return (e for e in self.entries if e.booked)

    def digest(self) -> str:
        """SHA-256 of the statement's money facts (balances; each booked line's dates,
        amount and currency): the same statement read again, from any of its
        formats, has the same digest."""
        h = hashlib.sha256()
        h.update(f"{self.currency}|{self.opening_minor}|{self.closing_minor}|{self.opening_date}|"
                 f"{self.closing_date}\n".encode())
        for e in self.booked():
            h.update(f"{e.booking_date}|{e.value_date}|{e.amount_minor}|{e.currency}\n".encode())
        return h.hexdigest()


def check_balances(statements: Sequence[Statement], *, file: str) -> None:
    """Refuse a file whose statements do not add up, naming the file and statement.

    Each statement: opening + booked lines = closing, every line in the
    statement's currency. Consecutive statements of one account in the file:
    the sequence rises and each opening equals the closing before it.
    """
    last: dict[str, Statement] = {}
    for s in statements:
        _check_one(s, file=file)
        before = last.get(s.account)
        if before is not None:
            _check_chain(before, s, file=file)
        last[s.account] = s


def _check_one(s: Statement, *, file: str) -> None:
    for e in s.entries:
        if e.currency != s.currency:
            raise StatementError(f"line in {e.currency} on a {s.currency} statement", file=file,
                                 statement=s.identity, entry=e.index, field="currency",
                                 reason="BALANCE_MISMATCH")
    moved = sum(e.amount_minor for e in s.booked())
    if s.opening_minor + moved != s.closing_minor:
        raise StatementError(
            f"opening balance {s.opening_minor} + lines {moved} = {s.opening_minor + moved}, "
            f"but the closing balance is {s.closing_minor} (minor units, "
            f"{s.closing_minor - s.opening_minor - moved:+d} unexplained)",
            file=file, statement=s.identity, field="closing balance", reason="BALANCE_MISMATCH")


def _check_chain(before: Statement, s: Statement, *, file: str) -> None:
    if before.sequence_key is not None and s.sequence_key is not None \
            and s.sequence_key <= before.sequence_key:
        raise StatementError(f"sequence {s.identity.sequence} does not follow "
                             f"{before.identity.sequence} of the statement before it",
                             file=file, statement=s.identity, field="sequence", reason="BALANCE_MISMATCH")
    if s.opening_minor != before.closing_minor:
        raise StatementError(f"opening balance {s.opening_minor} is not the closing balance "
                             f"{before.closing_minor} of {before.identity} before it (minor units)",
                             file=file, statement=s.identity, field="opening balance",
                             reason="BALANCE_MISMATCH")
