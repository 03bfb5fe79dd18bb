"""BillingService handlers: decode, call rating.billing on the server's dues ledger, encode.

The server bills its own site: the prepaid service's current configuration
(LoadConfig may change it) with the billing rules of the `billing.toml`
beside the site file, read and checked at start (`BillingRules`). The site's
shared-area groups are in that configuration when its share heads bill them
all (rating.prepaid.sitedocs), so a served bill has the shared-area lines
the bill run on the ledger has. Roles are
the interceptor's (rating.server.roles); a handler only reads who acts from
`roles.CALLER`. Errors become statuses in rating.server.status, as the
prepaid handlers' do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import grpc

from rating.billing import render
from rating.billing.claims import check_claims
from rating.billing.config import billing_path
from rating.billing.documents import BillLine, DraftBill
from rating.billing.dues_import import import_dues, parse_dues
from rating.billing.inputs import SiteBilling, load_site_billing, run_cycle, site_billing
from rating.billing.ledger import Document, DuesLedger, NotFound, OpResult
from rating.billing.ledger_rows import line_of
from rating.billing.run import RunInputs, draft_cycle, issue_cycle
from rating.billing.statements import Statement, statement
from rating.billing.usage import usage_by_account
from rating.engine import rate
from rating.errors import InputError
from rating.prepaid.errors import DeadlineExceeded, InvalidArgument
from rating.prepaid.service import PrepaidService
from rating.server import roles
from rating.server.arrow_io import read_ipc
from rating.server.servicers import unary
from rating.server.status import StatusError
from rating.v1 import billing_pb2 as pb
from rating.v1 import billing_pb2_grpc

DRAFTS_SHOWN_DEFAULT, DRAFTS_SHOWN_MAX = 20, 1000
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8",
               "arrow": "application/vnd.apache.arrow.file"}
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 100, 1000


@dataclass(frozen=True)
class BillingRules:
    """A site's billing file as read at start: its text and where it lives."""

    text: str
    where: str
    templates: Path  # the site's own bill templates
    postpaid_groups: frozenset[str]  # the shared-area groups its share heads bill: the server may split them

    @classmethod
    def of_site_file(cls, site_file: str | Path) -> BillingRules | None:
        """The billing file beside a site file, checked with the site (None: the
        site has none, billing is off); raises on a bad site or billing file."""
        if not billing_path(site_file).exists():
            return None
        society = load_site_billing(site_file)
        return cls(society.rules_text, society.billing.path, society.templates,
                   frozenset(society.billing.head_of_group))


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, service: PrepaidService, ledger: DuesLedger | None, rules: BillingRules | None):
        self.service, self.ledger, self.rules = service, ledger, rules
        self._society: tuple[int, SiteBilling] | None = None  # (config version, what it bills with)

    def site(self, site_id: str) -> tuple[SiteBilling, DuesLedger]:
        """What the server bills with now, and its ledger; refused when it bills nothing or another site."""
        if self.rules is None or self.ledger is None:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, "this server bills nothing: start it with "
                              "--site SITE.toml and a billing.toml beside it", reason="NO_BILLING")
        version = self.service.config_version
        if self._society is None or self._society[0] != version:  # LoadConfig replaced the site
            config = self.service.config
            society = site_billing(config, self.rules.text, where=self.rules.where,
                                   templates=self.rules.templates)
            check_claims(config, society.billing, self.service.policy, site_where="site")
            self._society = version, society
        society = self._society[1]
        if site_id and site_id != society.site_id:
            raise StatusError(grpc.StatusCode.NOT_FOUND, f"this server bills site {society.site_id!r}, not "
                              f"{site_id!r}", reason="UNKNOWN_SITE", site_id=site_id)
        return society, self.ledger

    async def _inputs(self, society: SiteBilling, request: pb.CycleRequest) -> RunInputs:
        bill_date = _day(request.bill_date, "bill_date") if request.bill_date else None
        cycle = run_cycle(society.site_id, request.cycle, society.billing, bill_date=bill_date)
        usage: dict = {}
        if request.readings:
            table = read_ipc(request.readings)
            result = await asyncio.to_thread(rate, table, config=society.config, unknown_meters="report",
                                             now=self.service.now(), periods=society.run_months(cycle))
            usage = usage_by_account(result.charges, society.config.site)
        return RunInputs(cycle, society.billing, society.numbering, society.units(), usage,
                         rules_text=society.rules_text)

    @unary("RunCycle")
    async def RunCycle(self, request, context):
        society, ledger = self.site(request.site_id)
        shown_max = _bounded(request.bills_max, DRAFTS_SHOWN_DEFAULT, DRAFTS_SHOWN_MAX, "bills_max")
        drafts = await draft_cycle(ledger, await self._inputs(society, request), offload=asyncio.to_thread)
        shown = ([d for d in drafts if d.account_id == request.account_id] if request.account_id
                 else drafts[:shown_max])
        if request.account_id and not shown:
            raise NotFound(f"account {request.account_id!r} has no bill in this run of site "
                           f"{society.site_id!r}", field="account_id")
        site = society.config.site
        return pb.RunCycleResponse(
            site_id=society.site_id, cycle_id=drafts[0].cycle.cycle_id if drafts else "", bills=len(drafts),
            charges_minor=sum(d.charges_minor for d in drafts),
            total_due_minor=sum(d.total_due_minor for d in drafts),
            anomalies=sum(len(d.anomalies) for d in drafts), drafts=[draft_message(d) for d in shown],
            currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)

    @unary("IssueCycle")
    async def IssueCycle(self, request, context):
        society, ledger = self.site(request.site_id)
        inputs = await self._inputs(society, request)
        _before_writing(context)
        result = await issue_cycle(ledger, inputs, actor=_actor(request.actor), offload=asyncio.to_thread)
        s, site = result.summary, society.config.site
        return pb.IssueCycleResponse(
            idempotency_key=result.key, sequence=result.seq, site_id=s["site"], cycle_id=s["cycle"],
            financial_year=s["fy"], bills=s["bills"], first_number=s["first"], last_number=s["last"],
            charges_minor=s["charges_minor"], entries=s["entries"], replayed=result.replayed,
            currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)

    @staticmethod
    async def _document(ledger: DuesLedger, society: SiteBilling, number: str, account_id: str) -> Document:
        """The document, or NOT_FOUND also when it is another account's (its existence is not told)."""
        document = await ledger.document(society.site_id, number) if number else None
        if document is None or (account_id and document.account_id != account_id):
            whose = f" of account {account_id!r}" if account_id else ""
            raise NotFound(f"no bill or note {number!r}{whose} in site {society.site_id!r}", field="number")
        return document

    @unary("GetBill")
    async def GetBill(self, request, context):
        society, ledger = self.site(request.site_id)
        document = await self._document(ledger, society, request.number, request.account_id)
        carried = await ledger.carried(society.site_id, document.number)
        return bill_message(document, society, carried)

    @unary("ListBills")
    async def ListBills(self, request, context):
        society, ledger = self.site(request.site_id)
        size = _bounded(request.page_size, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, "page_size")
        offset = _offset(request.page_token)
        cycle_id = ""
        if request.cycle:
            cycle_id = run_cycle(society.site_id, request.cycle, society.billing).cycle_id
        documents = await ledger.documents(society.site_id, cycle_id=cycle_id, account_id=request.account_id,
                                           limit=size + 1, offset=offset)  # one more: is there a next page
        page = documents[:size]
        token = str(offset + size) if len(documents) > size else ""
        site = society.config.site
        return pb.ListBillsResponse(bills=[bill_message(d, society) for d in page], next_page_token=token,
                                    currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)

    @unary("ImportDues")
    async def ImportDues(self, request, context):
        society, ledger = self.site(request.site_id)
        name = Path(request.file_name).name
        if not name:
            raise InvalidArgument("file_name is empty: name the file (its suffix says .csv or .xlsx)",
                                  field="file_name")
        registry = society.config.registry
        dues = await asyncio.to_thread(parse_dues, Path(name), request.content, units=set(registry.accounts),
                                       heads=set(society.billing.heads),
                                       exponent=society.config.site.minor_unit_exponent)
        _before_writing(context)
        result: OpResult = await import_dues(ledger, dues, site_id=society.site_id,
                                             actor=_actor(request.actor))
        site = society.config.site
        return pb.ImportDuesResponse(idempotency_key=result.key, sequence=result.seq,
                                     entries=result.summary["entries"],
                                     amount_minor=result.summary["amount_minor"], replayed=result.replayed,
                                     currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)


    async def _statement(self, request) -> tuple[SiteBilling, Statement, str]:
        """The statement asked for, and the account's name (NOT_FOUND for an account the site lacks)."""
        society, ledger = self.site(request.site_id)
        account = society.config.registry.accounts.get(request.account_id)
        if account is None:
            raise NotFound(f"no account {request.account_id!r} in site {society.site_id!r}",
                           field="account_id")
        first, last = _day(request.from_date, "from_date"), _day(request.to_date, "to_date")
        found = await statement(ledger, society.site_id, account.account_id, first, last)
        return society, found, account.name

    @unary("GetStatement")
    async def GetStatement(self, request, context):
        society, found, _ = await self._statement(request)
        site = society.config.site
        lines = [pb.StatementLine(date=r.on.isoformat(), kind=r.kind, reference=r.reference,
                                  description=r.description, amount_minor=r.amount_minor,
                                  balance_minor=r.balance_minor, heads=list(r.heads)) for r in found.rows]
        return pb.Statement(site_id=found.site_id, account_id=found.account_id,
                            from_date=found.first.isoformat(), to_date=found.last.isoformat(),
                            opening_minor=found.opening_minor, lines=lines, closing_minor=found.closing_minor,
                            currency=site.currency,
                            minor_unit_exponent=site.minor_unit_exponent,
                            paid=[pb.StatementPaid(date=p.on.isoformat(), paid_by=p.payer, bill=p.bill,
                                                   head=p.head, amount_minor=p.amount_minor)
                                  for p in found.paid])

    @unary("RenderStatement")
    async def RenderStatement(self, request, context):
        fmt = _format(request.format, render.STATEMENT_FORMATS)
        society, found, name = await self._statement(request)
        data = await asyncio.to_thread(render.statement_bytes, found, fmt, society.document,
                                       society.templates, name)
        file_name = f"statement-{found.account_id}-{found.first}-{found.last}.{fmt}"
        return pb.RenderedDocument(file_name=file_name, media_type=MEDIA_TYPES[fmt], content=data)

    @unary("RenderBill")
    async def RenderBill(self, request, context):
        fmt = _format(request.format, ("pdf", "html"))
        society, ledger = self.site(request.site_id)
        document = await self._document(ledger, society, request.number, request.account_id)
        carried = await ledger.carried(society.site_id, document.number)
        view = render.bill_view(document, society.document, None, carried)
        if fmt == "pdf":
            data = await asyncio.to_thread(render.bill_pdf, view)
        else:
            data = (await asyncio.to_thread(render.bill_html, view, society.templates)).encode()
        return pb.RenderedDocument(file_name=f"{document.number.replace('/', '-')}.{fmt}",
                                   media_type=MEDIA_TYPES[fmt], content=data)


def _format(given: str, formats: tuple[str, ...]) -> str:
    fmt = given.lower() or formats[0]
    if fmt not in formats:
        raise InvalidArgument(f"format must be one of {', '.join(formats)}, got {given!r}", field="format")
    return fmt


def _actor(given: str) -> str:
    """Who acts: the token's name, with the person the client names (--actor) when it names one."""
    caller = roles.CALLER.get()
    if not caller.name:  # authentication off
        return given or "grpc client"
    return f"{given} via {caller.name}" if given else caller.name


def _before_writing(context) -> None:
    """A call whose deadline passed writes nothing (the client has given up on it)."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the call's deadline passed before its write: nothing was written")


def _day(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"not a date: {text!r}; give YYYY-MM-DD", where=field, field=field) from None


def _bounded(value: int, default: int, maximum: int, field: str) -> int:
    if value < 0 or value > maximum:
        raise InvalidArgument(f"{field} must be between 0 (the default, {default}) and {maximum}, "
                              f"got {value}", field=field)
    return value or default


def _offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit() or len(token) > 12:
        raise InvalidArgument(f"bad page token {token!r}: pass next_page_token as it came",
                              field="page_token")
    return int(token)


def line_message(line: BillLine) -> pb.BillLine:
    return pb.BillLine(head=line.head, kind=line.kind.value, amount_minor=line.amount_minor,
                       description=line.description, basis=[pb.Basis(name=k, value=v) for k, v in line.basis],
                       ref=line.ref)


def draft_message(bill: DraftBill) -> pb.DraftBill:
    cycle = bill.cycle
    return pb.DraftBill(account_id=bill.account_id, bill_to=bill.bill_to, cycle_id=cycle.cycle_id,
                        period_start=cycle.period_start.isoformat(), period_end=cycle.period_end.isoformat(),
                        bill_date=cycle.bill_date.isoformat(), due_date=cycle.due_date.isoformat(),
                        lines=[line_message(line) for line in bill.lines], anomalies=list(bill.anomalies),
                        charges_minor=bill.charges_minor, total_due_minor=bill.total_due_minor)


def bill_message(doc: Document, society: SiteBilling, carried: list[str] | None = None) -> pb.Bill:
    body, site = doc.body, society.config.site
    return pb.Bill(
        number=doc.number, doc_type=doc.doc_type.value, site_id=doc.site_id, account_id=doc.account_id,
        cycle_id=doc.cycle_id, issued_on=doc.issued_on.isoformat(), due_date=doc.due_date.isoformat(),
        total_minor=doc.total_minor, bill_to=body.get("bill_to", ""),
        lines=[line_message(line_of(data)) for data in body.get("lines", ())],
        anomalies=list(body.get("anomalies", ())),
        total_due_minor=body.get("total_due_minor", doc.total_minor),
        corrects=doc.corrects, cancels=doc.cancels, carried=carried or [], sequence=doc.seq, actor=doc.actor,
        body_json=json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        currency=site.currency, minor_unit_exponent=site.minor_unit_exponent)
