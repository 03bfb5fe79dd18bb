"""A bill as a reader sees it: its lines sorted into sections, with what each
was computed on, amounts in the site's currency format. Built from an
issued document (`of_document`) or a draft (`of_draft`, marked DRAFT); the
HTML template and the PDF layout both draw this and nothing else.

Usage detail (each meter's readings, multiplier, slabs; each shared-area
share's group, method and weight over the total) comes from the cycle's
rated lines (`Usage`). An issued bill keeps its amounts, not its usage: a
usage detail is accepted only when its lines add up to the bill's line of
each meter and group, so a rendered bill never shows figures its amounts
were not computed from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from rating.billing.documents import BillLine, DraftBill, LineKind, UsageLine
from rating.billing.ledger import Document
from rating.billing.ledger_rows import line_of
from rating.billing.render_settings import DocumentSettings
from rating.errors import InputError

DRAFT = "DRAFT"
_TITLES = {"bill": "Bill", "credit_note": "Credit note", "debit_note": "Debit note"}
INVOICE_LABELS = {"gstin": "GSTIN", "sac": "SAC code", "place_of_supply": "Place of supply"}


@dataclass(frozen=True)
class Readings:
    """A meter's first and last register reading of the cycle, as read (before the multiplier)."""

    first: Decimal
    last: Decimal
    first_at: str = ""
    last_at: str = ""


@dataclass(frozen=True)
class Usage:
    """What the cycle's rating says of an account's usage: its rated lines,
    and per meter its readings and multiplier when known."""

    lines: Sequence[UsageLine] = ()
    readings: Mapping[str, Readings] = field(default_factory=dict)
    multipliers: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One line as shown: what, on what basis, how much."""

    head: str
    description: str
    amount: str
    amount_minor: int
    basis: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MeterView:
    meter_id: str
    tariff_id: str
    head: str
    amount: str
    multiplier: int | None
    readings: Readings | None
    quantity: str
    slabs: tuple[Row, ...]  # one per rated line: component, TOU period, slab


@dataclass(frozen=True)
class ShareView:
    group_id: str
    head: str
    method: str
    weight: str
    weight_total: str
    amount: str


@dataclass(frozen=True)
class BillView:
    title: str  # Tax invoice, Bill, Credit note, Debit note
    number: str  # DRAFT for a draft
    draft: bool
    site: DocumentSettings
    account_id: str
    bill_to: str
    bill_date: dt.date
    due_date: dt.date
    period: tuple[dt.date, dt.date] | None
    charges: tuple[Row, ...]  # fixed, area, fund, count, item heads with their rule
    meters: tuple[MeterView, ...]
    shares: tuple[ShareView, ...]
    interest: tuple[Row, ...]  # interest and late fees, with their days and rate
    taxes: tuple[Row, ...]
    rounding: tuple[Row, ...]
    arrears: tuple[Row, ...]
    invoice: tuple[tuple[str, str], ...]  # GSTIN, SAC code, place of supply
    this_cycle: str
    arrears_total: str
    total_due: str
    total_due_minor: int
    payment_reference: str
    anomalies: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # a note's reason and the bill it corrects; notes a bill carries
    has_usage_detail: bool = False
    address: tuple[str, ...] = ()  # the unit's address, a line each, under bill_to


def of_draft(draft: DraftBill, site: DocumentSettings, usage: Usage | None = None) -> BillView:
    """A draft as its bill will read, numbered DRAFT."""
    cycle = draft.cycle
    return _view("bill", DRAFT, True, site, draft.account_id, draft.bill_to, cycle.bill_date, cycle.due_date,
                 (cycle.period_start, cycle.period_end), draft.lines, draft.anomalies, usage,
                 cycle=cycle.cycle_id, address=draft.address)


def of_document(doc: Document, site: DocumentSettings, usage: Usage | None = None,
                carried: Sequence[str] = ()) -> BillView:
    """An issued bill or note as stored."""
    body = doc.body
    lines = tuple(line_of(data) for data in body["lines"])
    period = body.get("period")
    notes = []
    if doc.corrects:
        what = "Cancels" if doc.cancels else "Corrects"
        notes.append(f"{what} bill {doc.corrects}: {body.get('reason', '')}")
    elif body.get("reason"):
        notes.append(str(body["reason"]))
    if carried:
        notes.append(f"Includes {', '.join(carried)}")
    return _view(doc.doc_type.value, doc.number, False, site, doc.account_id, body.get("bill_to", ""),
                 doc.issued_on, doc.due_date,
                 (dt.date.fromisoformat(period[0]), dt.date.fromisoformat(period[1])) if period else None,
                 lines, tuple(body.get("anomalies", ())), usage, cycle=doc.cycle_id, notes=tuple(notes),
                 address=str(body.get("address", "")))


def _view(doc_type: str, number: str, draft: bool, site: DocumentSettings, account_id: str, bill_to: str,
          bill_date: dt.date, due_date: dt.date, period, lines: Sequence[BillLine],
          anomalies: tuple[str, ...], usage: Usage | None, *, cycle: str,
          notes: tuple[str, ...] = (), address: str = "") -> BillView:
    sections: dict[str, list[Row]] = {name: [] for name in ("charges", "interest", "taxes", "rounding",
                                                            "arrears")}
    meter_lines, share_lines = [], []
    for line in lines:
        basis = dict(line.basis)
        if line.kind is LineKind.CHARGE and "meter" in basis:
            meter_lines.append(line)
        elif line.kind is LineKind.CHARGE and "group" in basis:
            share_lines.append(line)
        else:
            sections[_SECTION[line.kind]].append(_row(line, site))
    taxes = [line for line in lines if line.kind is LineKind.TAX]
    invoice = _invoice(taxes)
    charges = sum(line.amount_minor for line in lines if line.kind is not LineKind.ARREARS)
    arrears = sum(line.amount_minor for line in lines if line.kind is LineKind.ARREARS)
    title = "Tax invoice" if doc_type == "bill" and invoice else _TITLES[doc_type]
    reference = site.reference(account_id=account_id, number=number, cycle=cycle) if not draft else DRAFT
    detail = usage is not None and bool(usage.lines)
    return BillView(
        title=title, number=number, draft=draft, site=site, account_id=account_id, bill_to=bill_to,
        bill_date=bill_date, due_date=due_date, period=period, charges=tuple(sections["charges"]),
        meters=tuple(_meters(meter_lines, usage, site, account_id)),
        shares=tuple(_shares(share_lines, usage, site, account_id)), interest=tuple(sections["interest"]),
        taxes=tuple(sections["taxes"]), rounding=tuple(sections["rounding"]),
        arrears=tuple(sections["arrears"]), invoice=invoice, this_cycle=site.money(charges),
        arrears_total=site.money(arrears), total_due=site.money(charges + arrears),
        total_due_minor=charges + arrears, payment_reference=reference, anomalies=anomalies, notes=notes,
        has_usage_detail=detail, address=tuple(line.strip() for line in address.splitlines() if line.strip()))


_SECTION = {LineKind.CHARGE: "charges", LineKind.INTEREST: "interest", LineKind.LATE_FEE: "interest",
            LineKind.TAX: "taxes", LineKind.ROUNDING: "rounding", LineKind.ARREARS: "arrears"}


def _row(line: BillLine, site: DocumentSettings) -> Row:
    shown = tuple((key, value) for key, value in line.basis if key not in INVOICE_LABELS)
    return Row(line.head, line.description, site.money(line.amount_minor), line.amount_minor, shown)


def _invoice(taxes: Sequence[BillLine]) -> tuple[tuple[str, str], ...]:
    """What a tax invoice must show, from the tax rules' `invoice` tables."""
    found: dict[str, str] = {}
    for line in taxes:
        for key, value in line.basis:
            if key in INVOICE_LABELS:
                found.setdefault(key, value)
    return tuple((INVOICE_LABELS[key], found[key]) for key in INVOICE_LABELS if key in found)


def _meters(lines: Sequence[BillLine], usage: Usage | None, site: DocumentSettings,
            account_id: str) -> list[MeterView]:
    by_meter: dict[str, list[UsageLine]] = {}
    for item in usage.lines if usage else ():
        if item.share is None and item.meter_id is not None:
            by_meter.setdefault(str(item.meter_id), []).append(item)
    views = []
    for line in lines:
        basis = dict(line.basis)
        meter = basis["meter"]
        rated = by_meter.get(meter, [])
        if usage is not None and usage.lines:
            _check_sum(rated, line, f"meter {meter}", account_id)
        slabs = tuple(_slab_row(item, site) for item in rated)
        views.append(MeterView(meter, basis.get("tariff", ""), line.description,
                               site.money(line.amount_minor), usage.multipliers.get(meter) if usage else None,
                               usage.readings.get(meter) if usage else None,
                               site.number(_metered(rated)) if rated else "", slabs))
    return views


def _metered(rated: Sequence[UsageLine]) -> Decimal:
    """A meter's consumption of the cycle: the quantity of its energy lines (each slab and TOU
    period holds a part of it), or of its first line when it has none."""
    energy = [item.quantity for item in rated if item.component == "energy"]
    return sum(energy, Decimal(0)) if energy else rated[0].quantity


def _slab_row(item: UsageLine, site: DocumentSettings) -> Row:
    what = item.component.replace("_", " ")
    basis: list[tuple[str, str]] = [("quantity", site.number(item.quantity))] if item.quantity else []
    if item.slab is not None:
        basis.append(("slab", str(item.slab)))
    if item.tou_period:
        basis.append(("period", item.tou_period))
    return Row(item.component, what, site.money(item.amount_minor), item.amount_minor, tuple(basis))


def _shares(lines: Sequence[BillLine], usage: Usage | None, site: DocumentSettings,
            account_id: str) -> list[ShareView]:
    by_group: dict[str, list[UsageLine]] = {}
    for item in usage.lines if usage else ():
        if item.share is not None:
            by_group.setdefault(item.share.group_id, []).append(item)
    views = []
    for line in lines:
        group = dict(line.basis)["group"]
        rated = by_group.get(group, [])
        if usage is not None and usage.lines:
            _check_sum(rated, line, f"shared-area group {group}", account_id)
        part = rated[0].share if rated else None
        views.append(ShareView(group, line.description, part.method if part else "",
                               site.number(part.weight) if part else "",
                               site.number(part.weight_total) if part else "", site.money(line.amount_minor)))
    return views


def _check_sum(rated: Sequence[UsageLine], line: BillLine, what: str, account_id: str) -> None:
    total = sum(item.amount_minor for item in rated)
    if total != line.amount_minor:
        raise InputError(f"the usage given for account {account_id!r} sums to {total} minor units on {what}, "
                         f"the bill's line says {line.amount_minor}: they are not the readings the bill was "
                         "computed from", where=f"account {account_id}", reason="USAGE_MISMATCH")
