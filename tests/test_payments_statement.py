"""A statement shows which payment paid which line: each allocation of the
range, in the Arrow table and its CSV, the HTML and the PDF, on both ledgers;
an undone one (a bounced cheque) shows as a negative line."""

from __future__ import annotations

import datetime as dt
import io

import pyarrow.csv as pacsv

from rating.billing import render
from rating.billing.ledger_payment_types import Method, ReversalRequest
from rating.billing.statements import statement, statement_table
from tests.billing_drafts import JUNE, SITE, run
from tests.test_billing_render import pdftotext
from tests.test_billing_statements import SETTINGS
from tests.test_payments_ledger import bills, payment

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
YEAR = (dt.date(2025, 4, 1), dt.date(2026, 3, 31))


async def paid_history(ledger):
    """May and June of 2,500.00 each; 3,000.00 in cash, then a cheque of 1,000.00 that bounces."""
    await ledger.issue(bills("A-101", water=12_000))
    await ledger.issue(bills("A-101", cycle=JUNE))
    await ledger.pay(payment("cash-1", "A-101", 300_000))
    await ledger.pay(payment("chq-1", "A-101", 100_000, method=Method.CHEQUE, reference="000451",
                             received_on=dt.date(2025, 7, 2)))
    await ledger.reverse(ReversalRequest("bounce-1", SITE, "R/25-26/000002", "bounce", dt.date(2025, 7, 9),
                                         "insufficient funds", "cashier"))
    return await statement(ledger, SITE, "A-101", *YEAR)


def test_every_allocation_of_the_range_is_on_the_statement_in_every_format(make_ledger):
    found = run(make_ledger, paid_history)
    paid = [(p.payer, p.bill, p.head, p.amount_minor) for p in found.paid]
    assert paid == [("R/25-26/000001", "B/25-26/000001", "maintenance", 250_000),
                    ("R/25-26/000001", "B/25-26/000001", "water", 12_000),
                    ("R/25-26/000001", "B/25-26/000002", "maintenance", 38_000),
                    ("R/25-26/000002", "B/25-26/000002", "maintenance", 100_000),
                    ("R/25-26/000002", "B/25-26/000002", "maintenance", -100_000)]
    table = statement_table(found)
    kinds = table["kind"].to_pylist()
    assert kinds.index("allocation") == table["reference"].to_pylist().index("closing") + 1
    allocation = [i for i, kind in enumerate(kinds) if kind == "allocation"]
    assert [table["paid_minor"][i].as_py() for i in allocation] == [a for *_, a in paid]
    assert {table["amount_minor"][i].as_py() for i in allocation} == {0}  # the balance rows count the money
    assert sum(table["amount_minor"].to_pylist()) == found.closing_minor - found.opening_minor
    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    again = pacsv.read_csv(io.BytesIO(sink.getvalue()))
    assert again["paid_by"].to_pylist()[-5:] == [p for p, *_ in paid]
    view = render.statement_view(found, SETTINGS, "Asha")
    html, text = render.statement_html(view), pdftotext(render.statement_pdf(view))
    for document in (html, text):
        assert "Paid by" in document
        assert "R/25-26/000002" in document and SETTINGS.money(-100_000) in document


def test_a_range_shows_only_its_own_allocations(make_ledger):
    async def go(ledger):
        await paid_history(ledger)
        return await statement(ledger, SITE, "A-101", dt.date(2025, 7, 1), dt.date(2025, 7, 31))

    found = run(make_ledger, go)
    assert [(p.on, p.payer, p.amount_minor) for p in found.paid] == [
        (dt.date(2025, 7, 2), "R/25-26/000002", 100_000), (dt.date(2025, 7, 9), "R/25-26/000002", -100_000)]
