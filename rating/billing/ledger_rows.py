"""The rows a dues ledger writes, built once for both backends.

A bill's document body is canonical JSON (sorted keys, no spaces), so the
same drafts give the same bytes: the issue's payload hash is taken over
them, and a retry of a cycle with other drafts is told apart from a replay.
Bills are numbered in account order (by code point), so the same drafts get
the same numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from rating.billing.documents import BillLine, DraftBill, LineKind
from rating.billing.ledger import DuesConflict, Entry, IssueBatch, NoteRequest, OpResult, SeriesFull
from rating.billing.numbering import DocType, Template
from rating.errors import InputError

KEY_CHARS_MAX = 200
ENTRY_COLUMNS = ("seq", "site_id", "account_id", "head", "kind", "amount_minor", "due_date", "ref", "note",
                 "actor")
DOC_COLUMNS = ("number", "doc_type", "site_id", "fy", "serial", "account_id", "cycle_id", "issued_on",
               "due_date", "total_minor", "body", "corrects", "cancels", "seq", "actor")
_ARREARS = LineKind.ARREARS


_canonical_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical(value: object) -> str:
    return _canonical_dumps(value)


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def check_key(key: str, what: str = "idempotency key") -> None:
    if not key or len(key) > KEY_CHARS_MAX:
        raise InputError(f"{what} must be 1..{KEY_CHARS_MAX} characters, got {len(key)}", where=what)


def check_replay(first: OpResult, kind: str, first_sha256: bytes, payload_sha256: bytes) -> OpResult:
    """The first result again, or DuesConflict when the payload differs."""
    if first.kind != kind or first_sha256 != payload_sha256:
        raise DuesConflict(f"key {first.key!r} was first used for another {first.kind} "
                           f"(operation #{first.seq}); nothing was written", where=first.key,
                           key=first.key, sequence=first.seq)
    return OpResult(first.seq, first.key, first.kind, first.summary, replayed=True)


def _same(day: dt.date) -> object:
    return day


_KIND_TEXT = {kind: kind.value for kind in LineKind}  # a dict lookup: Enum attributes are slow


def line_json(line: BillLine) -> tuple:
    """A line as JSON sees it (tuples are arrays; the kind its text)."""
    return (line.head, _KIND_TEXT[line.kind], line.amount_minor, line.description, line.basis, line.ref)


def line_of(data: list) -> BillLine:
    head, kind, amount, description, basis, ref = data
    return BillLine(head, LineKind(kind), amount, description, tuple(tuple(p) for p in basis), ref)


@dataclass
class PreparedIssue:
    """An issue's bills in numbering order with what is written of each, built
    once outside the transaction: bodies, what each posts, the payload hash."""

    bills: list[DraftBill]
    bodies: list[str]
    posted: list[list[tuple[str, str, int]]]  # per bill: (head, kind, amount) of each line it posts
    charges_minor: list[int]
    payload_sha256: bytes


def prepare_issue(batch: IssueBatch) -> PreparedIssue:
    check_key(batch.key)
    bills = sorted(batch.bills, key=lambda bill: bill.account_id)
    for before, after in zip(bills, bills[1:], strict=False):
        if before.account_id == after.account_id:
            raise InputError(f"account {after.account_id!r} has two bills in cycle {batch.cycle_id}",
                             where=f"cycle {batch.cycle_id}")
    digest = hashlib.sha256(canonical([batch.site_id, batch.cycle_id, batch.bill_date.isoformat()]).encode())
    bodies, posted, charges = [], [], []
    arrears, kinds, dumps = _ARREARS, _KIND_TEXT, _canonical_dumps
    for bill in bills:
        cycle = bill.cycle
        lines = bill.lines
        body = dumps({"bill_to": bill.bill_to, "due_date": cycle.due_date.isoformat(),
                      "period": (cycle.period_start.isoformat(), cycle.period_end.isoformat()),
                      "total_due_minor": sum(line.amount_minor for line in lines),
                      "lines": [line_json(line) for line in lines], "anomalies": bill.anomalies,
                      **({"address": bill.address} if bill.address else {})})
        posts = [(line.head, kinds[line.kind], line.amount_minor) for line in lines
                 if line.kind is not arrears and line.amount_minor]
        bodies.append(body)
        posted.append(posts)
        charges.append(sum(line.amount_minor for line in lines if line.kind is not arrears))
        digest.update(f"{len(bill.account_id)}:{bill.account_id}{len(body)}:".encode())
        digest.update(body.encode())
    return PreparedIssue(bills, bodies, posted, charges, digest.digest())


def first_serial(last_serial: int, count: int, template: Template, where: str) -> int:
    """The first of `count` serials after `last_serial`, refused past the template's width."""
    if last_serial + count > template.serial_max:
        raise SeriesFull(f"series {template.text!r} has {template.serial_max - last_serial} numbers left "
                         f"this year, {count} are needed", where=where)
    return last_serial + 1


def bill_rows(batch: IssueBatch, prepared: PreparedIssue, fy: str, serial: int, seq: int, *,
              date_value: Callable[[dt.date], object] = _same) -> tuple[list[tuple], list[tuple]]:
    """(document rows, entry rows) of the bills, numbered from `serial`; dates
    as `date_value` gives them (the backend's column value, made once per date)."""
    number_of = batch.numbering.template(DocType.BILL).formatter(fy)
    dates: dict[dt.date, object] = {}
    site, actor, cycle_id = batch.site_id, batch.actor, batch.cycle_id
    issued = date_value(batch.bill_date)
    docs: list[tuple] = []
    entries: list[tuple] = []
    for i, (bill, body, posts, charges) in enumerate(zip(prepared.bills, prepared.bodies, prepared.posted,
                                                         prepared.charges_minor, strict=True)):
        number = number_of(serial + i)
        account = bill.account_id
        due = dates.get(bill.cycle.due_date)
        if due is None:
            due = dates[bill.cycle.due_date] = date_value(bill.cycle.due_date)
        docs.append((number, "bill", site, fy, serial + i, account, cycle_id, issued, due, charges, body, "",
                     False, seq, actor))
        entries.extend([(seq, site, account, head, kind, amount, due, number, "", actor)
                        for head, kind, amount in posts])
    return docs, entries


def note_payload(request: NoteRequest) -> tuple[tuple[BillLine, ...], str, bytes]:
    """The note's signed lines, its body and its payload hash; bad lines refused."""
    check_key(request.key)
    if request.doc_type is DocType.BILL or not request.lines:
        raise InputError("a note is a credit_note or debit_note with at least one line", where=request.key)
    for line in request.lines:
        if line.kind is _ARREARS or type(line.amount_minor) is not int or line.amount_minor <= 0:
            raise InputError(f"note line {line.head!r}: give a positive amount of a charge, interest, "
                             f"tax or rounding line, got {line.amount_minor} ({line.kind})",
                             where=request.key)
    lines = signed_lines(request)
    body = note_body(lines, request)
    return lines, body, sha256(canonical([request.site_id, request.doc_type.value, request.account_id,
                                          request.corrects, request.note_date.isoformat(), body]))


def note_body(lines: Sequence[BillLine], request: NoteRequest) -> str:
    return canonical({"lines": [line_json(line) for line in lines], "reason": request.reason,
                      "due_date": request.due_date.isoformat()})


def signed_lines(request: NoteRequest) -> tuple[BillLine, ...]:
    """The note's lines as they move the dues: a credit note's amounts negated."""
    sign = -1 if request.doc_type is DocType.CREDIT_NOTE else 1
    return tuple(replace(line, amount_minor=sign * line.amount_minor) for line in request.lines)


def note_rows(request: NoteRequest, lines: Sequence[BillLine], body: str, fy: str, serial: int, seq: int, *,
              cancels: bool = False) -> tuple[tuple, list[tuple]]:
    """(document row, entry rows) of a note whose `lines` carry signed amounts."""
    number = request.numbering.template(request.doc_type).format(fy, serial)
    ref = request.corrects or number
    entries = [(seq, request.site_id, request.account_id, line.head, line.kind.value, line.amount_minor,
                request.due_date, ref, number, request.actor) for line in lines if line.amount_minor]
    total = sum(line.amount_minor for line in lines)
    doc = (number, request.doc_type.value, request.site_id, fy, serial, request.account_id, "",
           request.note_date, request.due_date, total, body, request.corrects, cancels, seq, request.actor)
    return doc, entries


def reversal(bill_body_json: dict) -> tuple[tuple[BillLine, ...], tuple[BillLine, ...]]:
    """Cancelling a bill: (the lines it posted, as the credit note shows them;
    the same lines negated, as they move the dues). Arrears were not posted."""
    posted = tuple(line for line in map(line_of, bill_body_json["lines"])
                   if line.kind is not _ARREARS and line.amount_minor)
    return posted, tuple(replace(line, amount_minor=-line.amount_minor) for line in posted)


def entry_rows(post_seq: int, site_id: str, actor: str, entries: Iterable[Entry]) -> list[tuple]:
    return [(post_seq, site_id, e.account_id, e.head, e.kind, e.amount_minor, e.due_date, e.ref, e.note,
             actor) for e in entries]


def issue_summary(batch: IssueBatch, prepared: PreparedIssue, fy: str, serial: int) -> dict:
    """What an issue's first result says (the numbers it gave, what it posted)."""
    number_of = batch.numbering.template(DocType.BILL).formatter(fy)
    count = len(prepared.bills)
    return {"site": batch.site_id, "cycle": batch.cycle_id, "fy": fy, "bills": count,
            "first": number_of(serial) if count else "",
            "last": number_of(serial + count - 1) if count else "",
            "charges_minor": sum(prepared.charges_minor), "entries": sum(map(len, prepared.posted))}


def day(value: str | dt.date) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
