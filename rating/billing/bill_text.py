"""Plain-text views of drafts and issued documents for the command line
(rendered bills, PDF and HTML, are another module's job)."""

from __future__ import annotations

from collections.abc import Sequence

from rating.billing.documents import DraftBill
from rating.billing.ledger import Document, OpResult
from rating.billing.ledger_rows import line_of
from rating.billing.money import major


def drafts(bills: Sequence[DraftBill], exponent: int, *, shown_max: int) -> str:
    """Each bill's lines (the first `shown_max`), then the run's totals."""
    return draft_summary(bills[:max(shown_max, 0)], exponent, bills=len(bills),
                         charges_minor=sum(bill.charges_minor for bill in bills),
                         due_minor=sum(bill.total_due_minor for bill in bills),
                         anomalies=sum(len(bill.anomalies) for bill in bills))


def draft_summary(shown: Sequence[DraftBill], exponent: int, *, bills: int, charges_minor: int,
                  due_minor: int, anomalies: int) -> str:
    """The bills `shown` in full, then the totals of the run's `bills` (a
    server answers a run with its totals and a few bills)."""
    out = []
    for bill in shown:
        out.append(f"{bill.account_id}  {bill.bill_to}  {bill.cycle.cycle_id}  due {bill.cycle.due_date}")
        for line in bill.lines:
            out.append(f"  {line.head:<24} {line.kind.value:<9} {major(line.amount_minor, exponent):>14}  "
                       f"{line.description}")
        out += [f"  ! {anomaly}" for anomaly in bill.anomalies]
        out.append(f"  {'this cycle':<34} {major(bill.charges_minor, exponent):>14}")
        out.append(f"  {'total due':<34} {major(bill.total_due_minor, exponent):>14}")
    if bills > len(shown):
        out.append(f"... {bills - len(shown)} more bills")
    out.append(f"draft: {bills} bills, {major(charges_minor, exponent)} this cycle, "
               f"{major(due_minor, exponent)} due with arrears, {anomalies} anomalies; nothing written")
    return "\n".join(out) + "\n"


def issued(result: OpResult, exponent: int) -> str:
    s = result.summary
    note = " (already issued: first result)" if result.replayed else ""
    numbers = f"{s['first']} .. {s['last']}" if s["bills"] else "no numbers"
    return (f"issued cycle {s['cycle']}: {s['bills']} bills {numbers}, {major(s['charges_minor'], exponent)} "
            f"posted in {s['entries']} entries [#{result.seq}]{note}\n")


def document(doc: Document, exponent: int, carried: Sequence[str] = ()) -> str:
    kind = doc.doc_type.value.replace("_", " ")
    out = [f"{kind} {doc.number}  account {doc.account_id}  issued {doc.issued_on}  due {doc.due_date}"]
    if doc.cycle_id:
        out.append(f"cycle {doc.cycle_id}  to {doc.body.get('bill_to', '')}")
    if doc.corrects:
        what = "cancels" if doc.cancels else "corrects"
        out.append(f"{what} bill {doc.corrects}: {doc.body.get('reason', '')}")
    for data in doc.body["lines"]:
        line = line_of(data)
        basis = ", ".join(f"{k} {v}" for k, v in line.basis)
        out.append(f"  {line.head:<24} {line.kind.value:<9} {major(line.amount_minor, exponent):>14}  "
                   f"{line.description}{f' ({basis})' if basis else ''}")
    out += [f"  ! {anomaly}" for anomaly in doc.body.get("anomalies", ())]
    out.append(f"  {'posted':<34} {major(doc.total_minor, exponent):>14}")
    if "total_due_minor" in doc.body:
        out.append(f"  {'total due':<34} {major(doc.body['total_due_minor'], exponent):>14}")
    if carried:
        out.append(f"carries {', '.join(carried)}")
    out.append(f"by {doc.actor} [#{doc.seq}]")
    return "\n".join(out) + "\n"


def listing(docs: Sequence[Document], exponent: int) -> str:
    out = [f"{d.number:<16} {d.doc_type.value:<11} {d.account_id:<12} {d.issued_on}  "
           f"{major(d.total_minor, exponent):>14}{'  cancels ' + d.corrects if d.cancels else ''}"
           for d in docs]
    out.append(f"{len(docs)} documents, {major(sum(d.total_minor for d in docs), exponent)} posted")
    return "\n".join(out) + "\n"
