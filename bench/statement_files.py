"""Bank statement files written from Statements (CAMT.053, MT940, CSV), and a synthetic
month of a society's bank account with the open items it pays.

For the reconciliation benchmark and the parsers' round-trip tests: what a
writer here writes, the parser must read back as the same Statement.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from xml.sax.saxutils import escape, quoteattr

from rating.payments.csv_statement import CsvLayout
from rating.payments.matching import OpenItem
from rating.payments.money import minor_unit_exponent
from rating.payments.statement import Counterparty, Entry, EntryPart, References, Statement, StatementIdentity


def decimal_text(minor: int, currency: str, *, decimal: str = ".", thousands: str = "") -> str:
    """Unsigned decimal text of |minor| minor units of `currency`."""
    exponent = minor_unit_exponent(currency)
    whole, part = divmod(abs(minor), 10**exponent)
    digits = str(whole)
    if thousands:
        groups = []
        while len(digits) > 3:
            digits, tail = digits[:-3], digits[-3:]
            groups.insert(0, tail)
        digits = thousands.join([digits, *groups])
    return f"{digits}{decimal}{part:0{exponent}d}" if exponent else digits


# -- CAMT.053 -------------------------------------------------------------------

def camt053(statements: list[Statement], *, version: str = "camt.053.001.02") -> bytes:
    ns = f"urn:iso:std:iso:20022:tech:xsd:{version}"
    later = int(version.rsplit(".", 1)[1]) >= 8  # 001.08 nests Sts/Cd and Dbtr/Pty
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<Document xmlns="{ns}"><BkToCstmrStmt>',
           "<GrpHdr><MsgId>MSG-1</MsgId><CreDtTm>2026-05-01T06:00:00</CreDtTm></GrpHdr>"]
    for s in statements:
        out.append(f"<Stmt><Id>{escape(s.identity.statement_id)}</Id>")
        if s.identity.sequence is not None:
            out.append(f"<ElctrncSeqNb>{s.identity.sequence}</ElctrncSeqNb>")
        out.append(f"<Acct><Id><IBAN>{escape(s.account)}</IBAN></Id><Ccy>{s.currency}</Ccy></Acct>")
        for code, minor, when in (("OPBD", s.opening_minor, s.opening_date),
                                  ("CLBD", s.closing_minor, s.closing_date)):
            out.append(f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                       f"{_camt_amount(minor, s.currency)}<Dt><Dt>{when}</Dt></Dt></Bal>")
        out.extend(_camt_entry(e, later) for e in s.entries)
        out.append("</Stmt>")
    out.append("</BkToCstmrStmt></Document>\n")
    return "".join(out).encode()


def _camt_amount(minor: int, currency: str, *, signed: bool = True) -> str:
    amount = f"<Amt Ccy={quoteattr(currency)}>{decimal_text(minor, currency)}</Amt>"
    return amount + (f"<CdtDbtInd>{'DBIT' if minor < 0 else 'CRDT'}</CdtDbtInd>" if signed else "")


def _camt_entry(e: Entry, later: bool) -> str:
    status = "BOOK" if e.booked else "PDNG"
    out = [f"<Ntry>{_camt_amount(e.amount_minor, e.currency)}"]
    if e.reversal:
        out.append("<RvslInd>true</RvslInd>")
    out.append(f"<Sts><Cd>{status}</Cd></Sts>" if later else f"<Sts>{status}</Sts>")
    out.append(f"<BookgDt><Dt>{e.booking_date}</Dt></BookgDt>")
    if e.value_date is not None:
        out.append(f"<ValDt><Dt>{e.value_date}</Dt></ValDt>")
    if e.parts:
        refs = e.references
        out.append(_text("AcctSvcrRef", refs.bank_reference))
        out.append("<BkTxCd><Prtry><Cd>NTRF</Cd></Prtry></BkTxCd><NtryDtls>")
        out.extend(_camt_part(p, e.amount_minor, e.currency, later) for p in e.parts)
        out.append("</NtryDtls>")
        out.append(_text("AddtlNtryInf", refs.remittance))
    else:
        out.append(_text("AcctSvcrRef", e.references.bank_reference))
        out.append("<BkTxCd><Prtry><Cd>NTRF</Cd></Prtry></BkTxCd><NtryDtls>")
        one = EntryPart(None, References(e.references.end_to_end_id, e.references.transaction_id, None,
                                         e.references.creditor_reference, e.references.remittance),
                        e.counterparty)
        out.append(_camt_part(one, e.amount_minor, e.currency, later))
        out.append("</NtryDtls>")
    out.append("</Ntry>")
    return "".join(out)


def _camt_part(p: EntryPart, entry_minor: int, currency: str, later: bool) -> str:
    refs = p.references
    out = ["<TxDtls><Refs>", _text("AcctSvcrRef", refs.bank_reference),
           _text("EndToEndId", refs.end_to_end_id), _text("TxId", refs.transaction_id), "</Refs>"]
    if p.amount_minor is not None:
        amount = _camt_amount(p.amount_minor, currency, signed=False)
        out.append(f"<AmtDtls><TxAmt>{amount}</TxAmt></AmtDtls>")
    if p.counterparty is not None:
        party = "Dbtr" if entry_minor > 0 else "Cdtr"
        name = _text("Nm", p.counterparty.name)
        out.append(f"<RltdPties><{party}>{f'<Pty>{name}</Pty>' if later else name}</{party}>")
        if p.counterparty.account:
            out.append(f"<{party}Acct><Id><IBAN>{escape(p.counterparty.account)}</IBAN></Id></{party}Acct>")
        out.append("</RltdPties>")
    if refs.remittance or refs.creditor_reference:
        out.append("<RmtInf>")
        out.append(_text("Ustrd", refs.remittance))
        if refs.creditor_reference:
            out.append(f"<Strd><CdtrRefInf>{_text('Ref', refs.creditor_reference)}</CdtrRefInf></Strd>")
        out.append("</RmtInf>")
    out.append("</TxDtls>")
    return "".join(out)


def _text(tag: str, value: str | None) -> str:
    return f"<{tag}>{escape(value)}</{tag}>" if value else ""


# -- MT940 ----------------------------------------------------------------------

def mt940(statements: list[Statement]) -> str:
    """MT940 messages; references beyond :61:'s customer and bank reference are dropped."""
    out = []
    for s in statements:
        out.append(f":20:{s.identity.statement_id}\n:25:{s.account}\n:28C:{s.identity.sequence}\n")
        out.append(f":60F:{_mt_balance(s.opening_minor, s.opening_date, s.currency)}\n")
        for e in s.entries:
            mark = ("R" if e.reversal else "") + ("C" if e.amount_minor > 0 else "D")
            if e.reversal:  # a reversal of a debit puts money in: RD; of a credit: RC
                mark = "RD" if e.amount_minor > 0 else "RC"
            value = e.value_date or e.booking_date
            customer = e.references.end_to_end_id or "NONREF"
            bank = f"//{e.references.bank_reference}" if e.references.bank_reference else ""
            out.append(f":61:{value:%y%m%d}{e.booking_date:%m%d}{mark}"
                       f"{decimal_text(e.amount_minor, e.currency, decimal=',')}NTRF{customer}{bank}\n")
            if e.references.remittance:
                out.append(f":86:{e.references.remittance}\n")
        out.append(f":62F:{_mt_balance(s.closing_minor, s.closing_date, s.currency)}\n")
    return "".join(out)


def _mt_balance(minor: int, when: date | None, currency: str) -> str:
    assert when is not None
    return f"{'D' if minor < 0 else 'C'}{when:%y%m%d}{currency}{decimal_text(minor, currency, decimal=',')}"


# -- CSV ------------------------------------------------------------------------

def csv_text(statement: Statement, layout: CsvLayout, *, line_end: str = "\n") -> str:
    """A bank export of `statement` in `layout` (running balance when it has the column)."""
    header = layout.columns()
    rows = []
    balance = statement.opening_minor
    for e in statement.entries:
        balance += e.amount_minor
        cells = {layout.date: e.booking_date.strftime(layout.date_format)}

        def money(minor: int) -> str:
            text = decimal_text(minor, statement.currency, decimal=layout.decimal_separator,
                                thousands=layout.thousands_separator)
            return "-" + text if minor < 0 else text

        if layout.amount:
            cells[layout.amount] = money(e.amount_minor)
        else:
            assert layout.debit and layout.credit
            cells[layout.debit] = money(-e.amount_minor) if e.amount_minor < 0 else ""
            cells[layout.credit] = money(e.amount_minor) if e.amount_minor > 0 else ""
        if layout.balance:
            cells[layout.balance] = money(balance)
        if layout.value_date and e.value_date:
            cells[layout.value_date] = e.value_date.strftime(layout.date_format)
        if layout.reference:
            cells[layout.reference] = e.references.transaction_id or ""
        if layout.narration:
            cells[layout.narration] = e.references.remittance or ""
        if layout.counterparty:
            cells[layout.counterparty] = e.counterparty.name or "" if e.counterparty else ""
        rows.append(cells)
    if layout.newest_first:
        rows.reverse()
    lines = [layout.delimiter.join(header)]
    lines += [layout.delimiter.join(_csv_cell(r.get(c, ""), layout.delimiter) for c in header) for r in rows]
    return line_end.join(lines) + line_end


def _csv_cell(value: str, delimiter: str) -> str:
    if delimiter in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


# -- a synthetic month ----------------------------------------------------------

@dataclass
class Month:
    statement: Statement
    items: list[OpenItem]


def synthetic_month(lines: int, *, seed: int = 7, account: str = "IN12HDFC0001234567890") -> Month:
    """A month of a society's account: `lines` lines (about 80% residents paying their bill
    by reference, 5% gateway settlements of 20 payments each, the rest payments quoting
    only a unit, wrong amounts, and debits), with the open items they pay."""
    rng = random.Random(seed)
    start = date(2026, 4, 1)
    items: list[OpenItem] = []
    entries: list[Entry] = []
    for n in range(1, lines + 1):
        day = start + timedelta(days=n * 30 // (lines + 1))
        unit = f"T{n % 40:02d}-{n % 997:04d}"
        kind = rng.random()
        amount = rng.randrange(50_000, 900_000)
        if kind < 0.80:  # a bill paid by its number
            ref = f"B26-{n:07d}"
            items.append(OpenItem(f"bill-{n}", ref, amount, unit, day))
            refs = References(end_to_end_id=f"E2E{n}", transaction_id=f"UTR{n:012d}",
                              remittance=f"Maintenance {unit} {ref}")
        elif kind < 0.85:  # a gateway settlement
            batch = f"SETL{n:08d}"
            parts = [rng.randrange(10_000, 300_000) for _ in range(20)]
            items.extend(OpenItem(f"pay-{n}-{k}", f"pay_{n}_{k}", a, f"T{k:02d}-{n % 997:04d}", day,
                                  batch=batch) for k, a in enumerate(parts))
            amount = sum(parts)
            refs = References(transaction_id=f"UTR{n:012d}", remittance=f"RAZORPAY SETTLEMENT {batch}")
        elif kind < 0.90:  # quotes only the unit
            items.append(OpenItem(f"due-{n}", f"D26-{n:07d}", amount, unit, day))
            refs = References(transaction_id=f"UTR{n:012d}", remittance=f"flat {unit} april")
        elif kind < 0.95:  # a wrong amount for a known bill
            ref = f"B26-{n:07d}"
            items.append(OpenItem(f"bill-{n}", ref, amount + 100, unit, day))
            refs = References(transaction_id=f"UTR{n:012d}", remittance=f"{ref}")
        else:  # a debit: a vendor paid
            amount = -amount
            refs = References(transaction_id=f"UTR{n:012d}", remittance=f"VENDOR PAYMENT {n}")
        entries.append(Entry(n, day, day, amount, "INR", refs, Counterparty(f"Payer {n}")))
    opening = 10_000_000
    closing = opening + sum(e.amount_minor for e in entries)
    identity = StatementIdentity(account, "STMT-2026-04", "4")
    statement = Statement("camt.053", identity, "INR", opening, closing, start, entries[-1].booking_date,
                          tuple(entries), (4,))
    return Month(statement, items)
