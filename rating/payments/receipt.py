"""A payment's receipt as a reader sees it: what was paid and what it settled,
as HTML (the Jinja2 template `receipt.html`, a site may override it like its
bill's) and PDF (the bill renderer's page layout), from one view.

    view = receipt_view(payment, allocations, settings)
    receipt_html(view, templates) -> str; receipt_pdf(view) -> bytes

A receipt reversed afterwards (a bounced cheque, a chargeback) is rendered
as it was issued, with the reversal shown below its lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rating.billing.ledger_payment_types import AllocationRow, Payment
from rating.billing.render import fonts
from rating.billing.render import templates as _templates
from rating.billing.render.pdf import SMALL_PT, Page
from rating.billing.render_settings import DocumentSettings

METHODS = {"cash": "Cash", "cheque": "Cheque", "transfer": "Bank transfer", "gateway": "Online"}


@dataclass(frozen=True)
class SettledLine:
    bill: str
    head: str
    on: dt.date
    amount: str
    undone: bool  # a reversal of an earlier allocation


@dataclass(frozen=True)
class ReceiptView:
    site: DocumentSettings
    number: str
    account_id: str
    received_on: dt.date
    method: str
    reference: str
    bank: str
    amount: str
    lines: tuple[SettledLine, ...]
    settled: str  # what its allocations paid, net
    advance: str  # what is left of it as the unit's advance ("" when none)


def receipt_view(payment: Payment, allocations: Sequence[AllocationRow],
                 site: DocumentSettings) -> ReceiptView:
    """The view of `payment` and its allocations (`DuesLedger.allocations(receipt=...)`)."""
    mine = [a for a in allocations if a.receipt == payment.receipt]
    lines = tuple(SettledLine(a.bill_ref, a.head, a.on, site.money(abs(a.amount_minor)), a.amount_minor < 0)
                  for a in mine)
    settled = sum(a.amount_minor for a in mine)
    left = 0 if payment.suspense else payment.amount_minor - settled
    reference = payment.reference
    return ReceiptView(site, payment.receipt, payment.account_id, payment.received_on,
                       METHODS.get(payment.method, payment.method), reference, payment.details.get("bank",
                                                                                                   ""),
                       site.money(payment.amount_minor), lines, site.money(settled),
                       site.money(left) if left else "")


def receipt_html(view: ReceiptView, templates: Path | None = None) -> str:
    return _templates.render(templates, "receipt.html", receipt=view)


def receipt_pdf(view: ReceiptView) -> bytes:
    fonts.faces()
    page = Page(f"Receipt {view.number}", f"{view.site.name}: {view.account_id}")
    page.line(view.site.name, "Receipt", size=13, bold=True)
    for address in view.site.address:
        page.line(address)
    page.rule()
    page.line(f"Receipt {view.number}", view.received_on.isoformat(), size=11, bold=True)
    page.line(f"Received from unit {view.account_id}", view.amount, size=11)
    how = " · ".join(p for p in (view.method, view.reference, view.bank) if p)
    page.line(how)
    page.y -= 6
    page.line("Settled", "Amount", bold=True)
    page.rule(2)
    for line in view.lines:
        what = f"{'Reversed: ' if line.undone else ''}{line.bill} {line.head} ({line.on.isoformat()})"
        page.line(what, ("-" if line.undone else "") + line.amount, size=SMALL_PT)
    page.rule(2)
    page.line("Total settled", view.settled, bold=True)
    if view.advance:
        page.line("Kept as advance for the next bills", view.advance)
    return page.finish()
