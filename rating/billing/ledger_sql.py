"""The dues ledger's logic, written once over a SQL transaction.

A backend supplies `_writing(site_id)` (a transaction that holds the site's
writer lock: SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock) and
`_reading()`, each yielding a `Tx`. Statements use `$1, $2, ...` in order of
appearance (SQLite's `?` are made from them); tables are unqualified (the
PostgreSQL backend sets its schema as the search path).

Each write checks inside its transaction what must hold at commit: the key
is new (or the same payload again), the cycle overlaps no issued cycle, the
series has numbers left, a bill is cancelled at most once.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from rating.billing import ledger_rows as rows
from rating.billing.documents import DuesItem, LineKind
from rating.billing.ledger import (
    AccountEntry,
    AuditRow,
    CycleOverlap,
    Document,
    DuesLedger,
    DuesPost,
    IssueBatch,
    IssuedCycle,
    NoteRequest,
    NotFound,
    OpResult,
    ReportRows,
)
from rating.billing.numbering import DocType, Numbering
from rating.errors import InputError

TABLES = ("dues_ops", "dues_entries", "dues_documents", "dues_series", "dues_cycles", "dues_carried",
          "dues_rules", "dues_audit", "dues_payments", "dues_allocations", "dues_credits", "dues_reversals",
          "dues_claims", "dues_refunds", "dues_statements", "dues_bank_lines")
_DOC_SELECT = ("SELECT number, doc_type, site_id, account_id, cycle_id, issued_on, due_date, total_minor, "
               "body, corrects, cancels, seq, actor FROM dues_documents")


class Tx(Protocol):
    async def fetch(self, sql: str, *args: object) -> list[tuple]: ...

    async def execute(self, sql: str, *args: object) -> None: ...

    async def insert_many(self, table: str, columns: Sequence[str], records: list[tuple]) -> None:
        """Bulk insert: executemany in the transaction (SQLite), COPY (PostgreSQL)."""

    def one_of(self, first: int, values: Sequence[str]) -> tuple[str, list]:
        """`IN ($first, ...)` (SQLite) or `= ANY($first)` (PostgreSQL: one array) and its arguments."""


async def _one(tx: Tx, sql: str, *args: object) -> tuple | None:
    found = await tx.fetch(sql, *args)
    return found[0] if found else None


def _utc_day(at_us: int) -> dt.date:
    return dt.datetime.fromtimestamp(at_us // 1_000_000, dt.timezone.utc).date()


def _now_us() -> int:
    return time.time_ns() // 1000


IssueHook = Callable[["Tx", IssueBatch, list[tuple]], Awaitable[None]]
PaymentHook = Callable[["Tx", str, list[OpResult]], Awaitable[None]]


class SqlDuesLedger(DuesLedger):
    # Run inside an issue's transaction once its bills are written, with their rows
    # (ledger_rows.DOC_COLUMNS): the notification outbox (rating.notify) writes a
    # bill's notices there, so the bill and its notices commit or roll back together.
    issue_hooks: tuple[IssueHook, ...] = ()
    payment_hooks: tuple[PaymentHook, ...] = ()  # the same, after new payments (their first results)

    @staticmethod
    def _date_value(day: dt.date) -> object:
        """A date as the backend's date columns take it."""
        return day

    @abstractmethod
    def _writing(self, site_id: str) -> AbstractAsyncContextManager[Tx]: ...

    @abstractmethod
    def _reading(self) -> AbstractAsyncContextManager[Tx]: ...

    # ------------------------------------------------------------ writes

    async def issue(self, batch: IssueBatch) -> OpResult:
        prepared = rows.prepare_issue(batch)  # outside the lock: the CPU part
        payload = prepared.payload_sha256
        fy = batch.numbering.financial_year(batch.bill_date)
        async with self._writing(batch.site_id) as tx:
            first = await self._replay(tx, batch.key, "issue", payload)
            if first is not None:
                return first
            await self._check_overlap(tx, batch)
            serial = await self._allocate(tx, batch.site_id, batch.numbering, DocType.BILL, fy,
                                          len(prepared.bills))
            summary = rows.issue_summary(batch, prepared, fy, serial)
            seq = await self._op(tx, batch.key, "issue", batch.site_id, batch.actor, payload, summary)
            docs, entries = rows.bill_rows(batch, prepared, fy, serial, seq, date_value=self._date_value)
            await tx.insert_many("dues_documents", rows.DOC_COLUMNS, docs)
            await tx.insert_many("dues_entries", rows.ENTRY_COLUMNS, entries)
            for hook in self.issue_hooks:
                await hook(tx, batch, docs)
            await tx.execute("INSERT INTO dues_cycles (site_id, cycle_id, period_start, period_end, seq) "
                             "VALUES ($1, $2, $3, $4, $5)", batch.site_id, batch.cycle_id, batch.period_start,
                             batch.period_end, seq)
            await tx.execute(
                "INSERT INTO dues_carried (site_id, note_number, bill_number) "
                "SELECT n.site_id, n.number, b.number FROM dues_documents n JOIN dues_documents b "
                "ON b.site_id = n.site_id AND b.account_id = n.account_id AND b.seq = $1 "
                "WHERE n.site_id = $2 AND n.doc_type <> 'bill' AND NOT EXISTS "
                "(SELECT 1 FROM dues_carried c WHERE c.site_id = n.site_id AND c.note_number = n.number)",
                seq, batch.site_id)
            if batch.rules_text:
                await self._rules(tx, batch, seq)
            await self._audit(tx, batch.site_id, batch.actor, "issue", batch.cycle_id,
                              rows.canonical(summary), seq)
            await self._after_issue(tx, batch, seq)
        return OpResult(seq, batch.key, "issue", summary)

    async def _after_issue(self, tx: Tx, batch: IssueBatch, seq: int) -> None:
        """What else an issue writes in its transaction (the payments ledger: advances used)."""

    async def note(self, request: NoteRequest) -> OpResult:
        lines, body, payload = rows.note_payload(request)
        async with self._writing(request.site_id) as tx:
            first = await self._replay(tx, request.key, "note", payload)
            if first is not None:
                return first
            if request.corrects:
                await self._bill(tx, request.site_id, request.corrects, request.account_id)
            return await self._write_note(tx, "note", request, lines, body, payload, cancels=False)

    async def cancel(self, site_id: str, number: str, *, key: str, on, reason: str, actor: str,
                     numbering: Numbering) -> OpResult:
        rows.check_key(key)
        payload = rows.sha256(rows.canonical(["cancel", site_id, number, on.isoformat(), reason]))
        async with self._writing(site_id) as tx:
            first = await self._replay(tx, key, "cancel", payload)
            if first is not None:
                return first
            bill = await self._bill(tx, site_id, number, "")
            done = await _one(tx, "SELECT number FROM dues_documents WHERE site_id = $1 AND corrects = $2 "
                                  "AND cancels", site_id, number)
            if done is not None:
                raise InputError(f"bill {number} was cancelled by credit note {done[0]}; nothing was written",
                                 where=number, reason="ALREADY_CANCELLED")
            posted, signed = rows.reversal(bill.body)
            request = NoteRequest(key, site_id, DocType.CREDIT_NOTE, bill.account_id, posted, on,
                                  bill.due_date, reason or f"cancels bill {number}", actor, numbering,
                                  corrects=number)
            return await self._write_note(tx, "cancel", request, signed, rows.note_body(signed, request),
                                          payload, cancels=True)

    async def post(self, post: DuesPost) -> OpResult:
        rows.check_key(post.key)
        # the entries alone: the same rows again (a file under another name) change nothing
        payload = rows.sha256(rows.canonical([post.kind, post.site_id, [
            [e.account_id, e.head, e.kind, e.amount_minor, e.due_date.isoformat(), e.ref, e.note]
            for e in post.entries]]))
        async with self._writing(post.site_id) as tx:
            first = await self._replay(tx, post.key, post.kind, payload)
            if first is not None:
                return first
            summary = {"entries": len(post.entries),
                       "amount_minor": sum(e.amount_minor for e in post.entries)}
            seq = await self._op(tx, post.key, post.kind, post.site_id, post.actor, payload, summary)
            await tx.insert_many("dues_entries", rows.ENTRY_COLUMNS,
                                 rows.entry_rows(seq, post.site_id, post.actor, post.entries))
            await self._audit(tx, post.site_id, post.actor, post.kind, post.key, post.detail, seq)
        return OpResult(seq, post.key, post.kind, summary)

    async def _write_note(self, tx: Tx, kind: str, request: NoteRequest, lines, body: str, payload: bytes, *,
                          cancels: bool) -> OpResult:
        fy = request.numbering.financial_year(request.note_date)
        serial = await self._allocate(tx, request.site_id, request.numbering, request.doc_type, fy, 1)
        number = request.numbering.template(request.doc_type).format(fy, serial)
        summary = {"number": number, "total_minor": sum(line.amount_minor for line in lines),
                   "corrects": request.corrects}
        seq = await self._op(tx, request.key, kind, request.site_id, request.actor, payload, summary)
        doc, entries = rows.note_rows(request, lines, body, fy, serial, seq, cancels=cancels)
        await tx.insert_many("dues_documents", rows.DOC_COLUMNS, [doc])
        await tx.insert_many("dues_entries", rows.ENTRY_COLUMNS, entries)
        await self._audit(tx, request.site_id, request.actor, kind, number, rows.canonical(summary), seq)
        return OpResult(seq, request.key, kind, summary)

    async def _replay(self, tx: Tx, key: str, kind: str, payload: bytes) -> OpResult | None:
        found = await _one(tx, "SELECT seq, op_key, kind, payload_sha256, summary FROM dues_ops "
                               "WHERE op_key = $1", key)
        if found is None:
            return None
        first = OpResult(found[0], found[1], found[2], json.loads(found[4]))
        return rows.check_replay(first, kind, bytes(found[3]), payload)

    async def _check_overlap(self, tx: Tx, batch: IssueBatch) -> None:
        found = await _one(tx, "SELECT cycle_id FROM dues_cycles WHERE site_id = $1 AND period_start <= $2 "
                               "AND period_end >= $3", batch.site_id, batch.period_end, batch.period_start)
        if found is not None:
            raise CycleOverlap(f"cycle {batch.cycle_id} overlaps the issued cycle {found[0]} of site "
                               f"{batch.site_id!r}; nothing was written", where=f"cycle {batch.cycle_id}")

    async def _allocate(self, tx: Tx, site_id: str, numbering: Numbering, kind: DocType, fy: str,
                        count: int) -> int:
        """The first of `count` new serials of the series; inside the transaction, so no gaps."""
        await tx.execute("INSERT INTO dues_series (site_id, doc_type, fy, last_serial) "
                         "VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING", site_id, kind.value, fy)
        found = await _one(tx, "SELECT last_serial FROM dues_series WHERE site_id = $1 AND doc_type = $2 "
                               "AND fy = $3", site_id, kind.value, fy)
        assert found is not None  # inserted just before, in this transaction
        serial = rows.first_serial(found[0], count, numbering.template(kind), f"{kind.value} {fy}")
        await tx.execute("UPDATE dues_series SET last_serial = $1 WHERE site_id = $2 AND doc_type = $3 "
                         "AND fy = $4", found[0] + count, site_id, kind.value, fy)
        return serial

    async def _op(self, tx: Tx, key: str, kind: str, site_id: str, actor: str, payload: bytes,
                  summary: dict) -> int:
        found = await _one(tx, "INSERT INTO dues_ops (op_key, kind, site_id, actor, payload_sha256, "
                               "created_us, summary) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                           key, kind, site_id, actor, payload, _now_us(), rows.canonical(summary))
        assert found is not None  # RETURNING of an INSERT that went through
        return found[0]

    async def _bill(self, tx: Tx, site_id: str, number: str, account_id: str) -> Document:
        found = await _one(tx, f"{_DOC_SELECT} WHERE site_id = $1 AND number = $2", site_id, number)
        if found is None or found[1] != DocType.BILL.value:
            raise NotFound(f"no bill {number!r} in site {site_id!r}; nothing was written", where=number)
        bill = _document(found)
        if account_id and bill.account_id != account_id:
            raise InputError(f"bill {number} is account {bill.account_id!r}'s, not {account_id!r}",
                             where=number)
        return bill

    async def _rules(self, tx: Tx, batch: IssueBatch, seq: int) -> None:
        digest = rows.sha256(batch.rules_text).hex()
        fresh = await tx.fetch("INSERT INTO dues_rules (site_id, sha256, rules, seq) VALUES ($1, $2, $3, $4) "
                               "ON CONFLICT DO NOTHING RETURNING sha256", batch.site_id, digest,
                               batch.rules_text, seq)
        if fresh:  # a change of rule: the first bills computed with these rules
            await self._audit(tx, batch.site_id, batch.actor, "rules", digest,
                              f"billing rules first used by cycle {batch.cycle_id}", seq)

    async def _audit(self, tx: Tx, site_id: str, actor: str, action: str, subject: str, detail: str,
                     seq: int) -> None:
        await tx.execute("INSERT INTO dues_audit (site_id, actor, at_us, action, subject, detail, seq) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7)", site_id, actor, _now_us(), action, subject,
                         detail, seq)

    # ------------------------------------------------------------ reads

    async def find(self, key: str) -> OpResult | None:
        async with self._reading() as tx:
            found = await _one(tx, "SELECT seq, op_key, kind, summary FROM dues_ops WHERE op_key = $1", key)
        return None if found is None else OpResult(found[0], found[1], found[2], json.loads(found[3]))

    async def balances(self, site_id: str, account_id: str = "") -> dict[tuple[str, str], int]:
        sql = "SELECT account_id, head, SUM(amount_minor) FROM dues_entries WHERE site_id = $1"
        args: list[object] = [site_id]
        if account_id:
            sql += " AND account_id = $2"
            args.append(account_id)
        async with self._reading() as tx:
            found = await tx.fetch(sql + " GROUP BY account_id, head", *args)
        return {(a, h): int(total) for a, h, total in found}

    async def open_items(self, site_id: str) -> dict[str, list[DuesItem]]:
        async with self._reading() as tx:
            found = await tx.fetch(
                "SELECT account_id, head, kind, ref, due_date, SUM(amount_minor) FROM dues_entries "
                "WHERE site_id = $1 GROUP BY account_id, head, kind, ref, due_date "
                "HAVING SUM(amount_minor) <> 0", site_id)
        items: dict[str, list[DuesItem]] = {}
        found.sort(key=lambda r: (r[0], str(r[4]), r[3], r[1]))  # account, due date, document, head
        for account, head, kind, ref, due, amount in found:
            item = DuesItem(head, LineKind(kind), int(amount), rows.day(due), ref)
            items.setdefault(account, []).append(item)
        return items

    async def account_entries(self, site_id: str, account_id: str) -> list[AccountEntry]:
        async with self._reading() as tx:
            found = await tx.fetch(
                "SELECT e.seq, o.kind, o.created_us, d.issued_on, e.head, e.kind, e.amount_minor, "
                "e.due_date, e.ref, e.note, d.number FROM dues_entries e JOIN dues_ops o ON o.seq = e.seq "
                "LEFT JOIN dues_documents d ON d.seq = e.seq AND d.site_id = e.site_id "
                "AND d.account_id = e.account_id WHERE e.site_id = $1 AND e.account_id = $2 ORDER BY e.seq",
                site_id, account_id)
        return [AccountEntry(seq, op_kind, rows.day(issued) if issued is not None else _utc_day(created_us),
                             head, kind, int(amount), rows.day(due), ref, note, number or "")
                for seq, op_kind, created_us, issued, head, kind, amount, due, ref, note, number in found]

    async def document(self, site_id: str, number: str) -> Document | None:
        async with self._reading() as tx:
            found = await _one(tx, f"{_DOC_SELECT} WHERE site_id = $1 AND number = $2", site_id, number)
        return None if found is None else _document(found)

    async def documents(self, site_id: str, *, cycle_id: str = "", account_id: str = "",
                        limit: int = 1000, offset: int = 0) -> list[Document]:
        sql, args = f"{_DOC_SELECT} WHERE site_id = $1", list[object]([site_id])
        for column, value in (("cycle_id", cycle_id), ("account_id", account_id)):
            if value:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        args += [limit, offset]
        async with self._reading() as tx:
            found = await tx.fetch(f"{sql} ORDER BY doc_type, fy, serial LIMIT ${len(args) - 1} OFFSET "
                                   f"${len(args)}", *args)
        return [_document(r) for r in found]

    async def carried(self, site_id: str, bill_number: str) -> list[str]:
        async with self._reading() as tx:
            found = await tx.fetch("SELECT note_number FROM dues_carried WHERE site_id = $1 "
                                   "AND bill_number = $2", site_id, bill_number)
        return sorted(r[0] for r in found)

    async def cycles(self, site_id: str) -> list[IssuedCycle]:
        async with self._reading() as tx:
            found = await tx.fetch("SELECT site_id, cycle_id, period_start, period_end, seq FROM dues_cycles "
                                   "WHERE site_id = $1 ORDER BY period_start", site_id)
        return [IssuedCycle(s, c, rows.day(a), rows.day(b), q) for s, c, a, b, q in found]

    async def audit(self, site_id: str, *, limit: int = 1000) -> list[AuditRow]:
        async with self._reading() as tx:
            found = await tx.fetch("SELECT audit_id, site_id, actor, at_us, action, subject, detail "
                                   "FROM dues_audit WHERE site_id = $1 ORDER BY audit_id LIMIT $2",
                                   site_id, limit)
        return [AuditRow(*r) for r in found]

    async def report_rows(self, site_id: str) -> ReportRows:
        async with self._reading() as tx:
            entries = await _dated_entries(tx, site_id)
            credits = await tx.fetch("SELECT account_id, on_date, SUM(amount_minor) FROM dues_credits "
                                     "WHERE site_id = $1 GROUP BY account_id, on_date", site_id)
            receipts = await tx.fetch(
                "SELECT p.account_id, p.receipt, p.method, p.received_on, p.amount_minor, r.on_date "
                "FROM dues_payments p LEFT JOIN dues_reversals r ON r.site_id = p.site_id "
                "AND r.receipt = p.receipt WHERE p.site_id = $1 AND NOT p.suspense ORDER BY p.seq", site_id)
            bills = await tx.fetch(
                "SELECT number, account_id, cycle_id, issued_on, due_date, total_minor FROM dues_documents "
                "WHERE site_id = $1 AND doc_type = 'bill' ORDER BY seq, number", site_id)
            cancelled = {n for (n,) in await tx.fetch(
                "SELECT corrects FROM dues_documents WHERE site_id = $1 AND cancels", site_id)}
        day = _days_memo()
        return ReportRows(
            entries,
            [(a, day(on), int(amount)) for a, on, amount in credits],
            [(a, r, m, day(on), int(amount), None if back is None else day(back))
             for a, r, m, on, amount, back in receipts],
            [(n, a, c, day(i), day(d), int(t), n in cancelled) for n, a, c, i, d, t in bills])

    async def counts(self) -> dict[str, int]:
        async with self._reading() as tx:
            return {t: (await tx.fetch(f"SELECT COUNT(*) FROM {t}"))[0][0] for t in TABLES}


# Entries summed per operation: the day of a document's entries is its date,
# of a payment's its allocations' date (one per operation and account), of
# imported dues their operation's. Three plain queries joined here: SQLite
# would join an aggregated subquery row by row.
_REPORT_ENTRIES = (
    "SELECT e.account_id, e.ref, e.due_date, CASE WHEN e.kind IN ('interest', 'late_fee') THEN 1 ELSE 0 END "
    "AS interest, e.seq, SUM(e.amount_minor) FROM dues_entries e WHERE e.site_id = $1 "
    "GROUP BY e.account_id, e.ref, e.due_date, interest, e.seq")
_REPORT_DAYS = (
    "SELECT seq, account_id, issued_on FROM dues_documents WHERE site_id = $1 UNION ALL "
    "SELECT seq, account_id, MIN(on_date) FROM dues_allocations WHERE site_id = $2 GROUP BY seq, account_id")


async def _dated_entries(tx: Tx, site_id: str) -> list[tuple]:
    """(account, ref, due, interest, day, amount) summed per day (ReportRows.entries)."""
    day = _days_memo()  # a site's rows name few distinct days: convert each once
    days: dict[tuple[int, str], dt.date] = {}
    for seq, account, on in await tx.fetch(_REPORT_DAYS, site_id, site_id):
        days.setdefault((seq, account), day(on))
    summed: dict[tuple, int] = {}
    undated: list[tuple] = []
    for account, ref, due, interest, seq, amount in await tx.fetch(_REPORT_ENTRIES, site_id):
        on = days.get((seq, account))
        if on is None:
            undated.append((account, ref, due, interest, seq, amount))
            continue
        key = (account, ref, day(due), interest, on)
        summed[key] = summed.get(key, 0) + int(amount)
    created = {seq: _utc_day(us) for seq in {r[4] for r in undated}
               for (us,) in await tx.fetch("SELECT created_us FROM dues_ops WHERE seq = $1", seq)}
    for account, ref, due, interest, seq, amount in undated:
        key = (account, ref, day(due), interest, created[seq])
        summed[key] = summed.get(key, 0) + int(amount)
    return [(*key, amount) for key, amount in summed.items() if amount]


def _days_memo() -> Callable[[str | dt.date], dt.date]:
    """rows.day, remembering each value it converted."""
    seen: dict[str | dt.date, dt.date] = {}

    def day(value: str | dt.date) -> dt.date:
        found = seen.get(value)
        if found is None:
            found = seen[value] = rows.day(value)
        return found

    return day


def _document(r: tuple) -> Document:
    return Document(r[0], DocType(r[1]), r[2], r[3], r[4], rows.day(r[5]), rows.day(r[6]), int(r[7]),
                    json.loads(r[8]), r[9], bool(r[10]), r[11], r[12])
