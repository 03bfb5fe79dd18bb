"""Bank CSV import by layout: what it reads, and the cells it refuses (naming file, row and
column, returning nothing)."""

from __future__ import annotations

from datetime import date

import pytest

from rating.payments import CsvLayout, StatementError, StatementIdentity, parse_statements
from tests import payments_checks

HDFC = CsvLayout(account="IN55 HDFC 0000 123", currency="INR", date="Date", debit="Withdrawal Amt.",
                 credit="Deposit Amt.", balance="Closing Balance", reference="Chq./Ref.No.",
                 narration="Narration", date_format="%d/%m/%y", thousands_separator=",", skip_lines=2)
EXPORT = """HDFC BANK Ltd.,,,,,
Statement of account 01/04/26 to 03/04/26,,,,,
Date,Narration,Chq./Ref.No.,Withdrawal Amt.,Deposit Amt.,Closing Balance
01/04/26,"UPI-A101-B26-0001, maintenance",UTR0001,,"2,500.00","1,02,500.00"
02/04/26,CHARGES,,120.50,,"1,02,379.50"

03/04/26,NEFT FROM B-202 B26-0002,UTR0002,,"12,34,567.00","13,36,946.50"
"""


def read(text: str, layout: CsvLayout = HDFC, **balances: int):
    return parse_statements(text.encode(), file="april.csv", layout=layout, **balances)


def refused(text: str, layout: CsvLayout = HDFC, **expected: str) -> StatementError:
    return payments_checks.refused(text, "april.csv", layout=layout, **expected)


def test_reads_an_indian_bank_export_with_grouped_thousands():
    (s,) = read(EXPORT)
    assert s.identity == StatementIdentity("IN55HDFC0000123", "2026-04-01..2026-04-03", None)
    assert [e.amount_minor for e in s.entries] == [250_000, -12_050, 123_456_700]
    assert (s.opening_minor, s.closing_minor) == (10_000_000, 133_694_650)
    assert s.entries[0].references.transaction_id == "UTR0001"
    assert s.entries[0].references.remittance == "UPI-A101-B26-0001, maintenance"
    assert s.entries[2].booking_date == date(2026, 4, 3)


def test_a_bom_and_windows_line_ends_read_the_same():
    assert read("\ufeff" + EXPORT.replace("\n", "\r\n")) == read(EXPORT)


def test_a_european_export_with_signed_amounts_and_dr_cr_balances():
    layout = CsvLayout(account="DE89370400440532013000", currency="EUR", date="Buchungstag",
                       amount="Betrag", balance="Saldo", date_format="%d.%m.%Y", decimal_separator=",",
                       thousands_separator=".", delimiter=";")
    text = "Buchungstag;Betrag;Saldo\n01.04.2026;1.234,56;1.000,00 Cr\n02.04.2026;-2.000,00;1.000,00 Dr\n"
    (s,) = read(text, layout)
    assert [e.amount_minor for e in s.entries] == [123_456, -200_000]
    assert (s.opening_minor, s.closing_minor) == (-23_456, -100_000)


def test_a_missing_column_is_named_with_the_header_row():
    refused(EXPORT.replace("Closing Balance", "Balance"), column="Closing Balance", row="3")


@pytest.mark.parametrize("cell", ['"25,00.00"', "2500", '"2,500.000"'])
def test_any_digit_grouping_and_exact_trailing_zeros_are_read(cell):
    assert read(EXPORT.replace('"2,500.00"', cell, 1))[0].entries[0].amount_minor == 250_000


@pytest.mark.parametrize(("cell", "why"), [('"2,500.005"', "decimals"), ('"2,,500.00"', "thousands"),
                                           ('",2500.00"', "thousands"), ('"2.500,00"', "decimal"),
                                           ("-", "decimal"), ("1e3", "decimal")])
def test_an_amount_cell_that_is_not_exact_is_refused(cell, why):
    error = refused(EXPORT.replace('"2,500.00"', cell, 1), row="4", column="Deposit Amt.")
    assert why in str(error)


def test_both_or_neither_of_debit_and_credit_is_refused():
    refused(EXPORT.replace(',,"2,500.00"', ',"1.00","2,500.00"'), row="4")
    refused(EXPORT.replace(',,"2,500.00"', ",,"), row="4")


def test_a_running_balance_that_does_not_follow_is_refused_at_its_row():
    error = refused(EXPORT.replace('"1,02,379.50"', '"1,02,379.60"'), row="5", column="Closing Balance")
    assert error.reason == "BALANCE_MISMATCH"


def test_a_bad_date_a_short_row_and_date_order_are_refused():
    refused(EXPORT.replace("02/04/26", "2026-04-02"), row="5", column="Date")
    refused(EXPORT.replace("02/04/26,CHARGES,,120.50,,", "02/04/26,CHARGES,120.50,"), row="5")
    refused(EXPORT.replace("03/04/26", "31/03/26"), column="Date")


def test_without_a_balance_column_the_balances_must_be_given_and_agree():
    layout = CsvLayout(account="A1", currency="INR", date="Date", amount="Amount")
    text = "Date,Amount\n2026-04-01,10.00\n2026-04-02,-2.50\n"
    refused(text, layout, statement="A1")
    (s,) = read(text, layout, opening_minor=500, closing_minor=1_250)
    assert s.closing_minor == 1_250
    with pytest.raises(StatementError, match="unexplained"):
        read(text, layout, opening_minor=500, closing_minor=1_251)


def test_an_empty_export_is_refused():
    refused("Date,Narration,Chq./Ref.No.,Withdrawal Amt.,Deposit Amt.,Closing Balance\n",
            CsvLayout(**{**HDFC.__dict__, "skip_lines": 0}))


def test_a_layout_is_checked_when_made():
    with pytest.raises(StatementError, match="either an amount column"):
        CsvLayout(account="A", currency="INR", date="D", amount="A", debit="X", credit="Y")
    with pytest.raises(StatementError, match="thousands_separator"):
        CsvLayout(account="A", currency="INR", date="D", amount="A", decimal_separator=",",
                  thousands_separator=",")
    with pytest.raises(StatementError, match="unknown CSV layout settings colour"):
        CsvLayout.from_mapping({"account": "A", "currency": "INR", "date": "D", "amount": "A",
                                "colour": "red"})
    layout = CsvLayout.from_mapping({"account": "A", "currency": "INR", "date": "D", "amount": "A"})
    assert layout.amount == "A"
