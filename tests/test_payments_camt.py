"""CAMT.053 import: what it reads, and the hostile files it refuses (naming file, statement,
entry and element, returning nothing)."""

from __future__ import annotations

from datetime import date

import pytest

from bench.statement_files import camt053
from rating.payments import (
    Counterparty,
    Entry,
    EntryPart,
    References,
    Statement,
    StatementError,
    StatementIdentity,
    parse_statements,
)
from tests import payments_checks

D = date(2026, 4, 1)


def statement(entries: list[Entry], *, opening: int = 100_000, sid: str = "STMT-1", seq: str = "41"
              ) -> Statement:
    closing = opening + sum(e.amount_minor for e in entries if e.booked)
    return Statement("camt.053", StatementIdentity("IN55HDFC0000123", sid, seq), "INR", opening, closing,
                     D, D, tuple(entries), (int(seq),))


def credit(index: int, amount: int, **refs: str) -> Entry:
    return Entry(index, D, D, amount, "INR", References(**refs), Counterparty("A. Resident"))


BASE = statement([credit(1, 250_000, end_to_end_id="B26-0001"), credit(2, -12_000, remittance="charges")])
GOOD = camt053([BASE]).decode()


def refused(xml: str | bytes, **expected: str) -> StatementError:
    return payments_checks.refused(xml, "april.xml", **expected)


def test_reads_statement_identity_balances_and_references():
    (s,) = parse_statements(GOOD.encode(), file="april.xml")
    assert s.identity == StatementIdentity("IN55HDFC0000123", "STMT-1", "41")
    assert (s.opening_minor, s.closing_minor, s.currency) == (100_000, 338_000, "INR")
    assert [e.amount_minor for e in s.entries] == [250_000, -12_000]
    assert s.entries[0].references.end_to_end_id == "B26-0001"
    assert s.entries[0].counterparty == Counterparty("A. Resident")


def test_a_batch_booking_keeps_its_parts_and_a_pending_line_is_outside_the_balances():
    batch = Entry(1, D, None, 30_000, "INR", References(bank_reference="SETL-9"), None,
                  (EntryPart(10_000, References(end_to_end_id="pay_1")),
                   EntryPart(20_000, References(end_to_end_id="pay_2"))))
    pending = Entry(2, D, None, 5_000, "INR", References(), booked=False)
    (s,) = parse_statements(camt053([statement([batch, pending])], version="camt.053.001.08"), file="x")
    assert s.closing_minor == 130_000 and not s.entries[1].booked
    assert [p.amount_minor for p in s.entries[0].parts] == [10_000, 20_000]


def test_billion_laughs_is_refused_without_expanding():
    levels = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    body = GOOD.split("\n", 1)[1].replace("<MsgId>MSG-1</MsgId>", "<MsgId>&lol9;</MsgId>")
    bomb = '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol0 "lol">' + levels + "]>\n" + body
    error = refused(bomb, field="DOCTYPE")
    assert error.reason == "BAD_FORMAT"


def test_an_external_entity_to_a_local_file_is_refused_and_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xxe = (f'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>\n'
           + GOOD.split("\n", 1)[1].replace("<MsgId>MSG-1</MsgId>", "<MsgId>&x;</MsgId>"))
    error = refused(xxe, field="DOCTYPE")
    assert "TOP-SECRET" not in str(error)


def test_not_xml_and_truncated_xml_name_the_line_and_column():
    refused("<Document>this is not a statement", row="1")
    cut = GOOD[: len(GOOD) // 2]
    error = refused(cut)
    assert error.details["row"] and error.details["column"]
    refused(b"\x00\x01\x02 binary", row="1")


def test_an_unknown_or_missing_namespace_is_refused():
    for wrong in ("camt.053.001.01", "camt.053.001.09", "camt.052.001.02", "pain.001.001.03"):
        error = refused(GOOD.replace("camt.053.001.02", wrong), field="Document")
        assert wrong in str(error)
    refused(GOOD.replace(' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"', ""), field="Document")


def test_three_decimals_for_inr_is_refused_at_its_entry():
    error = refused(GOOD.replace(">2500.00<", ">2500.005<"), statement="STMT-1", entry="1",
                    field="Ntry/Amt")
    assert "decimals" in str(error)


def test_trailing_zeros_past_the_minor_unit_are_exact_and_accepted():
    (s,) = parse_statements(GOOD.replace(">2500.00<", ">2500.000<").encode(), file="x")
    assert s.entries[0].amount_minor == 250_000


@pytest.mark.parametrize("amount", ["-2500.00", "+2500.00", "2,500.00", "2500.00e0", "", "NaN"])
def test_an_amount_with_a_sign_or_odd_digits_is_refused(amount):
    refused(GOOD.replace(">2500.00<", f">{amount}<", 1), entry="1", field="Ntry/Amt")


@pytest.mark.parametrize("indicator", ["CRD", "crdt", "", "DEBIT"])
def test_an_odd_credit_debit_indicator_is_refused(indicator):
    first = GOOD.index("<Ntry>")
    xml = GOOD[:first] + GOOD[first:].replace("<CdtDbtInd>CRDT</CdtDbtInd>",
                                              f"<CdtDbtInd>{indicator}</CdtDbtInd>", 1)
    refused(xml, entry="1", field="Ntry/CdtDbtInd")


def test_a_debit_marked_as_credit_breaks_the_balance_and_is_refused():
    second = GOOD.index("<Ntry>", GOOD.index("<Ntry>") + 1)
    xml = GOOD[:second] + GOOD[second:].replace("DBIT", "CRDT", 1)
    error = refused(xml, statement="STMT-1", field="closing balance")
    assert error.reason == "BALANCE_MISMATCH" and "-24000 unexplained" in str(error)


def test_statements_that_do_not_chain_are_refused():
    one = statement([credit(1, 1_000)], sid="S-1", seq="41")
    two = statement([credit(1, 1_000)], opening=one.closing_minor + 1, sid="S-2", seq="42")
    refused(camt053([one, two]), statement="S-2", field="opening balance")
    back = statement([credit(1, 1_000)], opening=one.closing_minor, sid="S-0", seq="40")
    refused(camt053([one, back]), statement="S-0", field="sequence")


def test_a_missing_required_element_is_named():
    refused(GOOD.replace("<IBAN>IN55HDFC0000123</IBAN>", ""), statement="STMT-1", field="Acct/Id")
    refused(GOOD.replace("<Cd>CLBD</Cd>", "<Cd>XXXX</Cd>"), statement="STMT-1", field="Bal")
    refused(GOOD.replace("<BookgDt><Dt>2026-04-01</Dt></BookgDt>", "", 1), entry="1", field="BookgDt")
    refused(GOOD.replace("<BookgDt><Dt>2026-04-01</Dt></BookgDt>", "<BookgDt><Dt>2026-04-31</Dt></BookgDt>",
                         1), entry="1", field="BookgDt")
    refused(GOOD.replace("<Sts>BOOK</Sts>", "<Sts>DONE</Sts>", 1), entry="1", field="Ntry/Sts")
    refused(GOOD.replace("<Stmt>", "<Stmnt>").replace("</Stmt>", "</Stmnt>"), field="BkToCstmrStmt/Stmt")


def test_a_line_in_another_currency_is_refused():
    refused(GOOD.replace('<Amt Ccy="INR">2500.00', '<Amt Ccy="EUR">2500.00'), entry="1",
            field="currency")
