"""ISO 20022 CAMT.053 (bank-to-customer statement) files, versions 001.02 to 001.08.

The XML is read by defusedxml with DTDs forbidden: a statement has no use for
one, and refusing it refuses entity expansion (billion laughs) and external
entities (XXE) whatever the parser underneath would do. Entries are read as
they end and dropped from the tree, so a 100,000-line file stays small.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from rating.payments.errors import StatementError
from rating.payments.money import to_minor
from rating.payments.statement import (
    Counterparty,
    Entry,
    EntryPart,
    References,
    Statement,
    StatementIdentity,
    check_balances,
    clean,
)

VERSIONS = tuple(f"camt.053.001.{n:02d}" for n in range(2, 9))
NAMESPACES = {f"urn:iso:std:iso:20022:tech:xsd:{v}": v for v in VERSIONS}
_TAG = re.compile(r"\{([^}]*)\}(.*)")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# entry statuses (Sts, or Sts/Cd from 001.08): only BOOK lines are in the balances
_STATUSES = {"BOOK": True, "PDNG": False, "INFO": False, "FUTR": False}


def parse_camt053(data: bytes, *, file: str) -> list[Statement]:
    """The statements of a CAMT.053 document, each checked to add up.

    Raises StatementError naming `file`, the statement (Stmt/Id), the entry
    (counted from 1) and the element for anything it cannot read exactly.
    """
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except ParseError as e:
        line, column = e.position
        raise StatementError(f"not well-formed XML ({_xml_message(e)})", file=file, row=line,
                             column=column, reason="BAD_FORMAT") from None
    except defusedxml.DTDForbidden:
        raise StatementError("the document has a DOCTYPE (DTDs, entities and external references "
                             "are refused)", file=file, field="DOCTYPE", reason="BAD_FORMAT") from None
    except defusedxml.DefusedXmlException as e:  # entities or external references without a DTD
        raise StatementError(f"refused XML construct: {e}", file=file, reason="BAD_FORMAT") from None
    reader = _Reader(file, root)
    statements = [reader.statement(stmt) for stmt in reader.findall(root, "BkToCstmrStmt/Stmt")]
    if not statements:
        raise StatementError("no Stmt in the document", file=file, field="BkToCstmrStmt/Stmt",
                             reason="BAD_FORMAT")
    check_balances(statements, file=file)
    return statements


def _xml_message(e: ParseError) -> str:
    return str(e).split(":", 1)[0]


class _Reader:
    """Reads Statements out of a parsed document, naming the place of anything wrong."""

    def __init__(self, file: str, root: Element) -> None:
        self.file = file
        match = _TAG.fullmatch(root.tag)
        namespace, name = match.groups() if match else ("", root.tag)
        if namespace not in NAMESPACES or name != "Document":
            found = f"{{{namespace}}}{name}" if namespace else name
            raise StatementError(f"not a CAMT.053 document: root {found}; expected a Document in "
                                 f"one of the namespaces {VERSIONS[0]} to {VERSIONS[-1]}",
                                 file=file, field="Document", reason="BAD_FORMAT")
        self.namespace = namespace
        self._steps: dict[str, tuple[str, ...]] = {}

    def _qualified(self, path: str) -> tuple[str, ...]:
        """'A/B' as the steps {ns}A, {ns}B: one-tag finds take ElementTree's fast path."""
        steps = self._steps.get(path)
        if steps is None:
            steps = self._steps[path] = tuple(f"{{{self.namespace}}}{step}" for step in path.split("/"))
        return steps

    def find(self, elem: Element | None, path: str) -> Element | None:
        for step in self._steps.get(path) or self._qualified(path):
            if elem is None:
                return None
            elem = elem.find(step)
        return elem

    def findall(self, elem: Element, path: str) -> list[Element]:
        """Every element at `path`, through every repetition of each step."""
        level = [elem]
        for step in self._qualified(path):
            level = [child for e in level for child in e.findall(step)]
        return level

    def _text(self, elem: Element, path: str) -> str | None:
        found = self.find(elem, path)
        return clean(found.text) if found is not None else None

    def _first_text(self, elem: Element, paths: Iterable[str]) -> str | None:
        for path in paths:
            text = self._text(elem, path)
            if text is not None:
                return text
        return None

    # -- statement ----------------------------------------------------------

    def statement(self, stmt: Element) -> Statement:
        statement_id = self._required(stmt, "Id", statement=None)
        sequence = self._text(stmt, "ElctrncSeqNb")
        identity = StatementIdentity(self._account(stmt, statement_id), statement_id, sequence)
        place: dict[str, Any] = {"file": self.file, "statement": identity}
        if sequence is not None and not sequence.isdigit():
            raise StatementError(f"ElctrncSeqNb {sequence!r} is not a number", **place,
                                 field="ElctrncSeqNb")
        balances = self._balances(stmt, identity)
        opening = balances.get("OPBD") or balances.get("PRCD")
        closing = balances.get("CLBD")
        if opening is None or closing is None:
            missing = "opening (OPBD or PRCD)" if opening is None else "closing (CLBD)"
            raise StatementError(f"no {missing} balance", **place, field="Bal/Tp/CdOrPrtry/Cd")
        currency = self._text(stmt, "Acct/Ccy") or opening[2]
        for code, (_, _, ccy) in balances.items():
            if ccy != currency:
                raise StatementError(f"{code} balance in {ccy} on a {currency} account", **place,
                                     field=f"Bal[{code}]/Amt/@Ccy")
        entries = tuple(self._entry(ntry, n, identity)
                        for n, ntry in enumerate(self.findall(stmt, "Ntry"), 1))
        return Statement(
            source="camt.053", identity=identity, currency=currency,
            opening_minor=opening[0], closing_minor=closing[0],
            opening_date=opening[1], closing_date=closing[1], entries=entries,
            sequence_key=(int(sequence),) if sequence is not None else None)

    def _account(self, stmt: Element, statement_id: str) -> str:
        account = self._first_text(stmt, ("Acct/Id/IBAN", "Acct/Id/Othr/Id"))
        if account is None:
            raise StatementError("no account id (Acct/Id/IBAN or Acct/Id/Othr/Id)", file=self.file,
                                 statement=statement_id, field="Acct/Id")
        return account.replace(" ", "").upper()

    def _balances(self, stmt: Element, identity: StatementIdentity
                  ) -> dict[str, tuple[int, date | None, str]]:
        """Balances by type code: (signed minor units, date, currency)."""
        found: dict[str, tuple[int, date | None, str]] = {}
        for i, bal in enumerate(self.findall(stmt, "Bal"), 1):
            place: dict[str, Any] = {"file": self.file, "statement": identity, "field": f"Bal[{i}]"}
            code = self._first_text(bal, ("Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry"))
            if code is None:
                raise StatementError("balance without a type code", **_at(place, "Tp/CdOrPrtry/Cd"))
            if code in found:
                raise StatementError(f"two {code} balances", **place)
            amount, currency = self._amount(bal, "Amt", place)
            sign = self._sign(bal, place)
            when = self._date(bal, ("Dt/Dt", "Dt/DtTm"), place, required=False)
            found[code] = (sign * amount, when, currency)
        return found

    # -- entries ------------------------------------------------------------

    def _entry(self, ntry: Element, index: int, statement: StatementIdentity) -> Entry:
        place: dict[str, Any] = {"file": self.file, "statement": statement, "entry": index, "field": "Ntry"}
        amount, currency = self._amount(ntry, "Amt", place)
        sign = self._sign(ntry, place)
        status = self._first_text(ntry, ("Sts/Cd", "Sts/Prtry", "Sts"))
        if status not in _STATUSES:
            raise StatementError(f"entry status {status!r} is not one of {', '.join(_STATUSES)}",
                                 **_at(place, "Sts"))
        reversal = self._text(ntry, "RvslInd") in ("true", "1")
        booked = _STATUSES[status]
        value = self._date(ntry, ("ValDt/Dt", "ValDt/DtTm"), place, required=False)
        booking = self._date(ntry, ("BookgDt/Dt", "BookgDt/DtTm"), place,
                             required=booked or value is None) or value
        assert booking is not None
        details = self.findall(ntry, "NtryDtls/TxDtls")
        parts = tuple(self._part(tx, sign, currency, {**place, "field": f"Ntry/NtryDtls/TxDtls[{n}]"})
                      for n, tx in enumerate(details, 1))
        bank_reference = self._text(ntry, "AcctSvcrRef") or self._text(ntry, "NtryRef")
        extra = self._text(ntry, "AddtlNtryInf")
        if len(parts) == 1:  # one payment: its references are the entry's
            references, counterparty, parts = _merged(parts[0], bank_reference, extra), \
                parts[0].counterparty, ()
        else:
            references = References(bank_reference=bank_reference, remittance=extra)
            counterparty = None
        return Entry(index=index, booking_date=booking, value_date=value, amount_minor=sign * amount,
                     currency=currency, references=references, counterparty=counterparty,
                     parts=parts, booked=booked, reversal=reversal)

    def _part(self, tx: Element, entry_sign: int, currency: str, place: dict[str, Any]) -> EntryPart:
        amount_path = "Amt" if self.find(tx, "Amt") is not None else "AmtDtls/TxAmt/Amt"
        amount_minor = None
        if self.find(tx, amount_path) is not None:
            amount, part_currency = self._amount(tx, amount_path, place)
            if part_currency != currency:
                raise StatementError(f"part in {part_currency} of a {currency} entry",
                                     **_at(place, f"{amount_path}/@Ccy"))
            sign = self._sign(tx, place) if self.find(tx, "CdtDbtInd") is not None else entry_sign
            amount_minor = sign * amount
        party = "Dbtr" if entry_sign > 0 else "Cdtr"  # who paid us, or whom we paid
        name = self._first_text(tx, (f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm"))
        account = self._first_text(tx, (f"RltdPties/{party}Acct/Id/IBAN",
                                        f"RltdPties/{party}Acct/Id/Othr/Id"))
        unstructured = [clean(u.text) for u in self.findall(tx, "RmtInf/Ustrd")]
        references = References(
            end_to_end_id=self._text(tx, "Refs/EndToEndId"),
            transaction_id=self._text(tx, "Refs/TxId") or self._text(tx, "Refs/UETR"),
            bank_reference=self._text(tx, "Refs/AcctSvcrRef"),
            creditor_reference=self._text(tx, "RmtInf/Strd/CdtrRefInf/Ref"),
            remittance=" ".join(u for u in unstructured if u) or None)
        counterparty = Counterparty(name, account) if name or account else None
        return EntryPart(amount_minor, references, counterparty)

    # -- fields -------------------------------------------------------------

    def _required(self, elem: Element, path: str, **place: Any) -> str:
        text = self._text(elem, path)
        if text is None:
            raise StatementError(f"no {path}", file=self.file, **place, field=path)
        return text

    def _amount(self, elem: Element, path: str, place: dict[str, Any]) -> tuple[int, str]:
        """An unsigned ActiveOrHistoricCurrencyAndAmount: (minor units, currency)."""
        place = _at(place, path)
        amt = self.find(elem, path)
        if amt is None or not (amt.text or "").strip():
            raise StatementError(f"no {path}", **place)
        currency = amt.get("Ccy") or ""
        text = amt.text.strip() if amt.text else ""
        if text.startswith(("-", "+")):
            raise StatementError(f"amount {text!r} has a sign; the direction is CdtDbtInd's", **place)
        return to_minor(text, currency, **place), currency

    def _sign(self, elem: Element, place: dict[str, Any]) -> int:
        indicator = self._text(elem, "CdtDbtInd")
        if indicator == "CRDT":
            return 1
        if indicator == "DBIT":
            return -1
        raise StatementError(f"CdtDbtInd {indicator!r} is neither CRDT nor DBIT",
                             **_at(place, "CdtDbtInd"))

    def _date(self, elem: Element, paths: tuple[str, ...], place: dict[str, Any], *,
              required: bool) -> date | None:
        """An ISODate, or the date an ISODateTime is written in (its own offset's day)."""
        text = self._first_text(elem, paths)
        if text is None:
            if required:
                raise StatementError(f"no {paths[0].split('/')[0]}", **_at(place, paths[0]))
            return None
        match = _DATE.match(text)
        try:
            if match is None or (len(text) > 10 and text[10] != "T"):
                raise ValueError(text)
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise StatementError(f"{text!r} is not an ISO date", **_at(place, paths[0])) from None


def _merged(part: EntryPart, bank_reference: str | None, extra: str | None) -> References:
    """A single part's references, with the entry's bank reference and text where it has none."""
    refs = part.references
    remittance = " ".join(t for t in (refs.remittance, extra) if t) or None
    return References(end_to_end_id=refs.end_to_end_id, transaction_id=refs.transaction_id,
                      bank_reference=refs.bank_reference or bank_reference,
                      creditor_reference=refs.creditor_reference, remittance=remittance)


def _at(place: dict[str, Any], path: str) -> dict[str, Any]:
    """`place` with its field extended by `path` ('Ntry' + 'Amt' -> 'Ntry/Amt')."""
    field = place.get("field")
    return {**place, "field": f"{field}/{path}" if field else path}
