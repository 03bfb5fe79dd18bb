"""MT940 import: what it reads, and the broken files it refuses (naming file, statement,
entry, tag and line, returning nothing)."""

from __future__ import annotations

import pytest

from rating.payments import StatementError, StatementIdentity, parse_statements
from tests import payments_checks

GOOD = """{1:F01HDFCINBBAXXX0000000000}{2:O9401200260401HDFCINBBAXXX00000000002604011200N}{4:
:20:STMT-0405
:25:IN55HDFC0000123
:28C:00005/001
:60F:C260401INR1000,00
:61:2604010401C2500,00NTRFB26-0001//UTR0001
:86:Maintenance A-101 B26-0001
:61:2604020402D120,50NCHGNONREF
:86:Bank charges
:61:2604030403RC10,00NTRFNONREF//UTR0002
:62F:C260403INR3369,50
-}{5:{CHK:ABCDEF012345}}
"""


def refused(text: str, **expected: str) -> StatementError:
    return payments_checks.refused(text, "april.sta", **expected)


def test_reads_identity_signs_dates_and_references():
    (s,) = parse_statements(GOOD.encode(), file="april.sta")
    assert s.identity == StatementIdentity("IN55HDFC0000123", "STMT-0405", "00005/001")
    assert s.sequence_key == (5, 1)
    assert [e.amount_minor for e in s.entries] == [250_000, -12_050, -1_000]  # RC: a credit reversed
    assert s.entries[2].reversal and not s.entries[0].reversal
    first = s.entries[0]
    assert (first.references.end_to_end_id, first.references.bank_reference) == ("B26-0001", "UTR0001")
    assert first.references.remittance == "Maintenance A-101 B26-0001"
    assert s.entries[1].references.end_to_end_id is None  # NONREF is no reference


def test_a_bom_and_windows_line_ends_read_the_same():
    (plain,) = parse_statements(GOOD.encode(), file="a.sta")
    (windows,) = parse_statements(("\ufeff" + GOOD.replace("\n", "\r\n")).encode(), file="a.sta")
    assert windows == plain


@pytest.mark.parametrize("broken", [
    ":61:26040XD120,50NCHGNONREF",  # a letter in the date
    ":61:261302D120,50NCHGNONREF",  # month 13
    ":61:2604020402X120,50NCHGNONREF",  # no debit/credit mark
    ":61:2604020402DNCHGNONREF",  # no amount
])
def test_a_broken_statement_line_is_named_by_entry_and_line(broken):
    error = refused(GOOD.replace(":61:2604020402D120,50NCHGNONREF", broken), statement="STMT-0405",
                    entry="2", field=":61:", row="8")
    assert error.reason == "BAD_FORMAT"


def test_an_amount_finer_than_the_minor_unit_is_refused():
    refused(GOOD.replace("D120,50N", "D120,505N"), entry="2", field=":61:")


def test_a_lost_statement_line_breaks_the_balance():
    # a mangled tag is not a tag: its line would silently join the :86: before it
    refused(GOOD.replace(":61:2604020402D", ":6l:2604020402D"), statement="STMT-0405",
            field="closing balance")


@pytest.mark.parametrize(("tag", "field"), [(":25:IN55HDFC0000123\n", ":25:"),
                                            (":28C:00005/001\n", ":28C:"),
                                            (":62F:C260403INR3369,50\n", ":62F:"),
                                            (":60F:C260401INR1000,00\n", ":60F:")])
def test_a_missing_required_tag_is_named(tag, field):
    refused(GOOD.replace(tag, ""), statement="STMT-0405", field=field)


def test_a_closing_balance_that_does_not_add_up_is_refused():
    error = refused(GOOD.replace("C260403INR3369,50", "C260403INR3369,51"), field="closing balance")
    assert "+1 unexplained" in str(error)


def test_two_messages_must_chain():
    second = GOOD.replace("STMT-0405", "STMT-0406").replace("00005/001", "00006/001")
    chained = second.replace("C260401INR1000,00", "C260403INR3369,50").replace(
        "C260403INR3369,50\n-}", "C260403INR5739,00\n-}")
    both = parse_statements((GOOD + chained).encode(), file="a.sta")
    assert [s.identity.statement_id for s in both] == ["STMT-0405", "STMT-0406"]
    refused(GOOD + second, statement="STMT-0406", field="opening balance")
    refused(chained + GOOD, statement="STMT-0405", field="sequence")


def test_text_without_any_message_is_refused():
    refused("hello\n", field=":20:")
