"""Statements of account on both dues ledgers: the closing balance is the
ledger's balance, a range's opening balance is what came before it, every
kind of entry shows (those that come later too), and the tables and PDF
say the same."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow.csv as pacsv
import pytest

from rating.billing import render
from rating.billing.documents import BillLine, LineKind
from rating.billing.ledger import AccountEntry, DuesPost, Entry, NoteRequest
from rating.billing.numbering import DocType, Numbering
from rating.billing.render_settings import document_settings
from rating.billing.statements import build, statement, statement_table
from rating.errors import InputError
from tests.billing_drafts import JUNE, MAY, SITE, batch, draft, run
from tests.test_billing_render import pdftotext

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
SETTINGS = document_settings(None, site_name="Green Meadows", currency="INR", exponent=2, where="t")


async def history(ledger) -> None:
    """May and June bills of two flats, a credit note on May's, imported arrears."""
    await ledger.post(DuesPost("import:opening", "import", SITE, "office", (
        Entry("F1", "maintenance", "charge", 120_000, dt.date(2025, 3, 31), "opening.csv:2"),
        Entry("F2", "maintenance", "charge", 50_000, dt.date(2025, 3, 31), "opening.csv:3")), "opening.csv"))
    await ledger.issue(batch([draft("F1", water=3_456), draft("F2")]))
    may_bill = (await ledger.documents(SITE, account_id="F1"))[0].number
    await ledger.note(NoteRequest("note:1", SITE, DocType.CREDIT_NOTE, "F1",
                                  (BillLine("water", LineKind.CHARGE, 1_000, "Meter misread"),),
                                  dt.date(2025, 6, 10), MAY.due_date, "meter misread", "treasurer",
                                  Numbering(), corrects=may_bill))
    june = draft("F1", JUNE, rounding=-44)
    interest = BillLine("interest", LineKind.INTEREST, 1_234, "Interest on bill", (("days", "15"),), may_bill)
    with_interest = type(june)(JUNE, "F1", june.bill_to, june.lines + (interest,))
    await ledger.issue(batch([with_interest, draft("F2", JUNE)], JUNE))


def test_over_all_days_the_closing_balance_is_the_ledgers_balance(make_ledger):
    async def go(ledger):
        await history(ledger)
        found = {a: await statement(ledger, SITE, a, dt.date(2020, 1, 1), dt.date(2030, 12, 31))
                 for a in ("F1", "F2")}
        balances = await ledger.balances(SITE)
        return found, balances

    found, balances = run(make_ledger, go)
    for account, shown in found.items():
        assert shown.opening_minor == 0
        assert shown.closing_minor == sum(v for (a, _), v in balances.items() if a == account)
    kinds = [(row.kind, row.description) for row in found["F1"].rows]
    assert ("interest", "Bill: Interest") in kinds and ("charge", "Note: Charges") in kinds
    assert ("charge", "Imported dues: Charges") in kinds and ("rounding", "Bill: Rounding off") in kinds
    note = next(row for row in found["F1"].rows if row.description == "Note: Charges")
    assert note.amount_minor == -1_000 and note.on == dt.date(2025, 6, 10)
    assert note.reference.startswith("CN/")


def test_a_ranges_opening_balance_is_all_before_it_and_its_rows_only_those_inside(make_ledger):
    async def go(ledger):
        await history(ledger)
        whole = await statement(ledger, SITE, "F1", dt.date(2020, 1, 1), dt.date(2030, 12, 31))
        july = await statement(ledger, SITE, "F1", dt.date(2025, 6, 11), dt.date(2025, 7, 31))
        return whole, july

    whole, july = run(make_ledger, go)
    before = [row for row in whole.rows if row.on < dt.date(2025, 6, 11)]
    assert july.opening_minor == before[-1].balance_minor
    through = [row for row in whole.rows if row.on <= dt.date(2025, 7, 31)]
    assert {row.on for row in july.rows} == {JUNE.bill_date}
    assert july.closing_minor == through[-1].balance_minor
    # the imported dues count from the day they were imported (today), after the range
    imported = whole.rows[-1]
    assert imported.description == "Imported dues: Charges" and imported.on > dt.date(2025, 7, 31)


def test_a_reversed_range_and_another_sites_account_give_an_error_or_nothing(make_ledger):
    async def go(ledger):
        await history(ledger)
        other = await statement(ledger, "another-site", "F1", dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        with pytest.raises(InputError, match="ends .* before it starts"):
            await statement(ledger, SITE, "F1", dt.date(2025, 7, 1), dt.date(2025, 6, 30))
        return other

    other = run(make_ledger, go)
    assert other.rows == () and other.opening_minor == other.closing_minor == 0


def test_an_entry_kind_the_statement_does_not_know_shows_as_itself():
    entries = [AccountEntry(1, "issue", dt.date(2025, 6, 1), "maintenance", "charge", 5_000,
                            dt.date(2025, 6, 15), "B/1", "", "B/1"),
               AccountEntry(2, "payment", dt.date(2025, 6, 9), "maintenance", "payment", -5_000,
                            dt.date(2025, 6, 9), "UTR 1234", "", "")]
    found = build(SITE, "F1", dt.date(2025, 6, 1), dt.date(2025, 6, 30), entries)
    assert [(r.description, r.reference, r.balance_minor) for r in found.rows] == [
        ("Bill: Charges", "B/1", 5_000), ("Payment: payment", "UTR 1234", 0)]


def test_the_table_csv_and_pdf_say_the_same(make_ledger):
    async def go(ledger):
        await history(ledger)
        return await statement(ledger, SITE, "F1", dt.date(2025, 1, 1), dt.date(2025, 12, 31))

    found = run(make_ledger, go)
    table = statement_table(found)
    assert table["reference"][0].as_py() == "opening" and table["reference"][-1].as_py() == "closing"
    assert table["balance_minor"][-1].as_py() == found.closing_minor
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    again = pacsv.read_csv(io.BytesIO(sink.getvalue()))
    assert again["amount_minor"].to_pylist() == table["amount_minor"].to_pylist()
    view = render.statement_view(found, SETTINGS, "राजेश कुमार शर्मा")
    text = pdftotext(render.statement_pdf(view))
    assert "राजेश कुमार शर्मा" in text and view.closing in text and "Opening balance" in text
    html = render.statement_html(view)
    assert view.closing in html and all(line.reference in html for line in view.lines)
