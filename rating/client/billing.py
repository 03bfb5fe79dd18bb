"""Python client of the BillingService (blocking), and the wire messages as
rating.billing's own shapes, so a remote caller prints what a local one does.

```python
from rating.client.billing import BillingClient

with BillingClient("127.0.0.1:50051", token="k7-office") as client:
    draft = client.run("2025-05")                 # writes nothing
    issued = client.issue("2025-05", actor="treasurer")
    bill = client.bill(issued.first_number)
    for bill in client.bills(cycle="2025-05"):
        print(bill.number, bill.account_id, bill.total_minor)
    client.import_dues("opening-arrears.xlsx")
```

It is a RatingClient with the billing calls added: the same channel, token,
TLS, deadlines and retries. Every call may be sent again: a draft writes
nothing, an issue is keyed by its cycle and an import by its file's content,
so a retry of an unanswered one returns its first result. Failures raise
rating.client.calls.ClientError (OutcomeUnknown when unanswered in time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from rating.billing.documents import BillLine, Cycle, DraftBill, LineKind
from rating.billing.ledger import Document, OpResult
from rating.billing.numbering import DocType
from rating.client.calls import RatingClient, readings_bytes
from rating.v1 import billing_pb2 as pb
from rating.v1 import billing_pb2_grpc


class BillingClient(RatingClient):
    """`site_id`: the site the caller means to bill ("" : whichever the server
    bills); a server of another site answers NOT_FOUND (UNKNOWN_SITE)."""

    def __init__(self, target: str, *, site_id: str = "", **kwargs):
        super().__init__(target, **kwargs)
        self.billing = billing_pb2_grpc.BillingServiceStub(self.channel)
        self.site_id = site_id

    def _cycle(self, cycle: str, readings, bill_date: dt.date | None, **fields) -> pb.CycleRequest:
        return pb.CycleRequest(site_id=self.site_id, cycle=cycle, bill_date=bill_date.isoformat() if bill_date
                               else "", readings=readings_bytes(readings) if readings is not None else b"",
                               **fields)

    def run(self, cycle: str, *, readings=None, bill_date: dt.date | None = None, bills_max: int = 0,
            account_id: str = "") -> pb.RunCycleResponse:
        """Draft the cycle (YYYY-MM): totals of every bill, the first `bills_max` in full."""
        request = self._cycle(cycle, readings, bill_date, bills_max=bills_max, account_id=account_id)
        return self._call(self.billing.RunCycle, request)

    def issue(self, cycle: str, *, readings=None, bill_date: dt.date | None = None,
              actor: str = "") -> pb.IssueCycleResponse:
        request = self._cycle(cycle, readings, bill_date, actor=actor)
        return self._call(self.billing.IssueCycle, request, key=f"issue {cycle}")

    def bill(self, number: str, *, account_id: str = "") -> pb.Bill:
        request = pb.GetBillRequest(site_id=self.site_id, number=number, account_id=account_id)
        return self._call(self.billing.GetBill, request)

    def bills(self, *, cycle: str = "", account_id: str = "", page_size: int = 0) -> Iterator[pb.Bill]:
        """Issued bills and notes in number order, fetched a page at a time."""
        for page in self.bill_pages(cycle=cycle, account_id=account_id, page_size=page_size):
            yield from page.bills

    def bill_pages(self, *, cycle: str = "", account_id: str = "",
                   page_size: int = 0) -> Iterator[pb.ListBillsResponse]:
        token = ""
        while True:
            page = self._call(self.billing.ListBills, pb.ListBillsRequest(
                site_id=self.site_id, cycle=cycle, account_id=account_id, page_size=page_size,
                page_token=token))
            yield page
            token = page.next_page_token
            if not token:
                return

    def statement(self, account_id: str, from_date: dt.date, to_date: dt.date) -> pb.Statement:
        return self._call(self.billing.GetStatement, _statement(self.site_id, account_id, from_date, to_date))

    def import_dues(self, path: str | Path, *, actor: str = "") -> pb.ImportDuesResponse:
        """Import a dues file (.csv or .xlsx) as it is on disk; the server checks every row."""
        path = Path(path)
        content = path.read_bytes()
        request = pb.ImportDuesRequest(site_id=self.site_id, file_name=path.name, content=content,
                                       actor=actor)
        key = f"import:{hashlib.sha256(content).hexdigest()}"
        return self._call(self.billing.ImportDues, request, key=key)

    def render_bill(self, number: str, *, format: str = "pdf", account_id: str = "") -> pb.RenderedDocument:
        request = pb.RenderBillRequest(site_id=self.site_id, number=number, account_id=account_id,
                                       format=format)
        return self._call(self.billing.RenderBill, request)

    def render_statement(self, account_id: str, from_date: dt.date, to_date: dt.date, *,
                         format: str = "pdf") -> pb.RenderedDocument:
        request = _statement(self.site_id, account_id, from_date, to_date, format=format)
        return self._call(self.billing.RenderStatement, request)


def _statement(site_id: str, account_id: str, from_date: dt.date, to_date: dt.date,
               format: str = "") -> pb.StatementRequest:
    return pb.StatementRequest(site_id=site_id, account_id=account_id, from_date=from_date.isoformat(),
                               to_date=to_date.isoformat(), format=format)


# ---------------------------------------------------------------- wire -> rating.billing shapes

def line_of(m: pb.BillLine) -> BillLine:
    return BillLine(m.head, LineKind(m.kind), m.amount_minor, m.description,
                    tuple((b.name, b.value) for b in m.basis), m.ref)


def draft_of(m: pb.DraftBill, site_id: str) -> DraftBill:
    day = dt.date.fromisoformat
    cycle = Cycle(site_id, day(m.period_start), day(m.period_end), day(m.bill_date), day(m.due_date))
    return DraftBill(cycle, m.account_id, m.bill_to, tuple(map(line_of, m.lines)), tuple(m.anomalies))


def document_of(m: pb.Bill) -> Document:
    day = dt.date.fromisoformat
    return Document(m.number, DocType(m.doc_type), m.site_id, m.account_id, m.cycle_id, day(m.issued_on),
                    day(m.due_date), m.total_minor, json.loads(m.body_json), m.corrects, m.cancels,
                    m.sequence, m.actor)


def issued_of(m: pb.IssueCycleResponse) -> OpResult:
    summary = {"site": m.site_id, "cycle": m.cycle_id, "fy": m.financial_year, "bills": m.bills,
               "first": m.first_number, "last": m.last_number, "charges_minor": m.charges_minor,
               "entries": m.entries}
    return OpResult(m.sequence, m.idempotency_key, "issue", summary, m.replayed)
