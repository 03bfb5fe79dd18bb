"""Payments in the dues ledger, written once over SQL for both backends.

A payment writes, in one transaction under the site's writer lock: its
operation (the idempotency key), its receipt (`dues_payments`, numbered in
the receipt series), a credit of its amount (`dues_credits`, the account's
money not yet allocated), and its allocations: each one row in
`dues_allocations` (what paid what), an entry paying off the item
(`dues_entries`, so balances and open items see it) and, when a receipt's
money paid it, a debit of that receipt's credit. What is left of the credit
is the advance the next payments and bills use (rating.billing.allocation).
Reversals, claims and refunds are in ledger_payments_more.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from rating.billing import ledger_rows as rows
from rating.billing.allocation import Allocation, AllocationRule, Source, allocate, credit_sources
from rating.billing.documents import DuesItem, LineKind
from rating.billing.ledger import IssueBatch, NotFound, OpResult
from rating.billing.ledger_payment_types import Flag, Method, PaymentRequest
from rating.billing.ledger_sql import SqlDuesLedger, Tx, _now_us
from rating.billing.numbering import DocType
from rating.errors import InputError

_KIND_TEXT = {kind: kind.value for kind in LineKind}  # a dict lookup: Enum attributes are slow
AMOUNT_MINOR_MAX = 10**15  # a payment above 10^13 rupees is a typing error
IN_LIST_MAX = 5_000  # values a query's list holds (SQLite's parameters; PostgreSQL takes one array)
PAYMENT_COLUMNS = ("site_id", "receipt", "fy", "serial", "account_id", "method", "amount_minor",
                   "received_on",
                   "reference", "details", "tag", "suspense", "seq", "actor")
ALLOCATION_COLUMNS = ("seq", "site_id", "account_id", "receipt", "credit_ref", "bill_ref", "head", "kind",
                      "due_date", "amount_minor", "on_date")
CREDIT_COLUMNS = ("seq", "site_id", "account_id", "receipt", "tag", "amount_minor", "on_date", "why")


def payment_payload(request: PaymentRequest) -> bytes:
    """What was paid, checked: the payload of the request's key (not its flags)."""
    rows.check_key(request.key)
    where = f"payment {request.key}"
    if type(request.amount_minor) is not int or not 0 < request.amount_minor <= AMOUNT_MINOR_MAX:
        raise InputError(f"amount must be a whole number of minor units, 1..{AMOUNT_MINOR_MAX}, "
                         f"got {request.amount_minor!r}", where=where)
    if not request.account_id or not request.site_id:
        raise InputError("a payment needs its site and account", where=where)
    Method(request.method)  # a StrEnum: refuses anything else
    instrument = request.instrument_date.isoformat() if request.instrument_date else ""
    return rows.sha256(rows.canonical([
        "pay", request.site_id, request.account_id, request.method.value, request.amount_minor,
        request.received_on.isoformat(), request.reference, request.bank, instrument, request.bill,
        request.tag]))


@dataclass
class AccountState:
    """An account's open items and unallocated receipts, kept current through a batch."""

    items: list[DuesItem] = field(default_factory=list)
    receipts: list[Source] = field(default_factory=list)  # oldest first
    known: bool = False


@dataclass
class Written:
    """The rows of one transaction's allocations, inserted together at the end;
    each row's first field the receipt whose operation it belongs to ("": the
    transaction's own), made its sequence number by `_write`."""

    site_id: str
    entries: list[tuple] = field(default_factory=list)
    allocations: list[tuple] = field(default_factory=list)
    credits: list[tuple] = field(default_factory=list)


class SqlPaymentsLedger(SqlDuesLedger):
    async def pay(self, request: PaymentRequest) -> OpResult:
        return (await self.pay_many([request]))[0]

    async def pay_many(self, requests: list[PaymentRequest]) -> list[OpResult]:
        if not requests:
            return []
        site = requests[0].site_id
        payloads = [payment_payload(r) for r in requests]
        for r in requests:
            if r.site_id != site or r.numbering != requests[0].numbering:
                raise InputError("the payments of one call belong to one site and numbering",
                                 where=f"payment {r.key}")
        async with self._writing(site) as tx:
            return await self._pay_in(tx, site, requests, payloads)

    async def _pay_in(self, tx: Tx, site: str, requests: Sequence[PaymentRequest],
                      payloads: Sequence[bytes]) -> list[OpResult]:
        firsts = await self._replays(tx, [r.key for r in requests])
        results: list[OpResult | None] = [None] * len(requests)
        fresh: list[int] = []
        seen: dict[str, int] = {}
        for i, (request, payload) in enumerate(zip(requests, payloads, strict=True)):
            if request.key in firsts:
                first, digest = firsts[request.key]
                results[i] = rows.check_replay(first, "pay", digest, payload)
            elif request.key in seen:  # the same key twice in one call: the first's result
                j = seen[request.key]
                if payloads[j] != payload:
                    raise InputError(f"key {request.key!r} twice with other payments; nothing was written",
                                     where=request.key, reason="IDEMPOTENCY_CONFLICT")
            else:
                seen[request.key] = i
                fresh.append(i)
        if fresh:
            new = [requests[i] for i in fresh]
            recorded = await self._record(tx, site, new, [payloads[i] for i in fresh])
            for i, result in zip(fresh, recorded, strict=True):
                results[i] = result
            for hook in self.payment_hooks:  # e.g. rating.notify's "payment received", in this transaction
                await hook(tx, site, recorded)
        for i, request in enumerate(requests):
            if results[i] is None:
                first_result = results[seen[request.key]]
                assert first_result is not None
                results[i] = replace(first_result, replayed=True)
        return [r for r in results if r is not None]

    async def _replays(self, tx: Tx, keys: list[str]) -> dict[str, tuple[OpResult, bytes]]:
        found: dict[str, tuple[OpResult, bytes]] = {}
        for chunk in _chunks(keys):
            among, args = tx.one_of(1, chunk)
            for seq, key, kind, digest, summary in await tx.fetch(
                    f"SELECT seq, op_key, kind, payload_sha256, summary FROM dues_ops WHERE op_key {among}",
                    *args):
                found[key] = (OpResult(seq, key, kind, json.loads(summary)), bytes(digest))
        return found

    async def _record(self, tx: Tx, site: str, requests: list[PaymentRequest],
                      payloads: Sequence[bytes]) -> list[OpResult]:
        states = await self._states(tx, site, {r.account_id for r in requests})
        bills = await self._named_bills(tx, site, {r.bill for r in requests if r.bill})
        numbers = await self._receipt_numbers(tx, site, requests)
        summaries, written, payment_rows = [], Written(site), []
        for request, (fy, serial, receipt) in zip(requests, numbers, strict=True):
            state = states.setdefault(request.account_id, AccountState())
            summary, details = _book(request, receipt, state, bills, written)
            summaries.append(summary)
            payment_rows.append([site, receipt, fy, serial, request.account_id, request.method.value,
                                 request.amount_minor, request.received_on, request.reference,
                                 rows.canonical(details), request.tag, summary["suspense"], 0, request.actor])
        texts = [rows.canonical(s) for s in summaries]
        seqs = await self._ops(tx, site, requests, payloads, texts)
        for record, seq in zip(payment_rows, seqs, strict=True):
            record[12] = seq
        by_receipt = {record[1]: record[12] for record in payment_rows}
        await tx.insert_many("dues_payments", PAYMENT_COLUMNS, [tuple(r) for r in payment_rows])
        await self._write(tx, written, by_receipt)
        if len(requests) == 1:
            await self._audit(tx, site, requests[0].actor, "pay", summaries[0]["receipt"], texts[0], seqs[0])
        else:  # one write, one audit row: the receipts it numbered and the money
            detail = {"payments": len(requests), "first": summaries[0]["receipt"],
                      "last": summaries[-1]["receipt"], "amount_minor": sum(r.amount_minor for r in requests)}
            await self._audit(tx, site, requests[-1].actor, "pay", f"{len(requests)} payments",
                              rows.canonical(detail), seqs[-1])
        return [OpResult(seq, r.key, "pay", s) for r, s, seq in zip(requests, summaries, seqs, strict=True)]

    async def _ops(self, tx: Tx, site: str, requests: list[PaymentRequest], payloads: Sequence[bytes],
                   summaries: list[str]) -> list[int]:
        """One operation row per payment, inserted in bulk; their sequence numbers."""
        now = _now_us()
        await tx.insert_many("dues_ops", ("op_key", "kind", "site_id", "actor", "payload_sha256",
                                          "created_us", "summary"),
                             [(r.key, "pay", site, r.actor, p, now, s)
                              for r, p, s in zip(requests, payloads, summaries, strict=True)])
        keys = [r.key for r in requests]
        seqs: dict[str, int] = {}
        for chunk in _chunks(keys):
            among, args = tx.one_of(1, chunk)
            seqs.update((k, q) for k, q in await tx.fetch(
                f"SELECT op_key, seq FROM dues_ops WHERE op_key {among}", *args))
        return [seqs[k] for k in keys]

    @staticmethod
    async def _write(tx: Tx, written: Written, seq_of: dict[str, int], seq: int = 0) -> None:
        """Insert the rows, each stamped with its operation (its receipt's, or `seq`)."""
        def stamped(records: list[tuple]) -> list[tuple]:
            return [(seq_of.get(r[0], seq), *r[1:]) for r in records]
        await tx.insert_many("dues_entries", rows.ENTRY_COLUMNS, stamped(written.entries))
        await tx.insert_many("dues_allocations", ALLOCATION_COLUMNS, stamped(written.allocations))
        await tx.insert_many("dues_credits", CREDIT_COLUMNS, stamped(_netted(written.credits)))

    async def _receipt_numbers(self, tx: Tx, site: str, requests: list[PaymentRequest]
                               ) -> list[tuple[str, int, str]]:
        """(fy, serial, receipt number) of each payment, in order, from each year's series."""
        numbering = requests[0].numbering
        years = [numbering.financial_year(r.received_on) for r in requests]
        firsts = {fy: await self._allocate(tx, site, numbering, DocType.RECEIPT, fy, years.count(fy))
                  for fy in dict.fromkeys(years)}
        template = numbering.template(DocType.RECEIPT)
        numbers = []
        for fy in years:
            serial = firsts[fy]
            firsts[fy] += 1
            numbers.append((fy, serial, template.format(fy, serial)))
        return numbers

    async def _states(self, tx: Tx, site: str, accounts: set[str]) -> dict[str, AccountState]:
        """Open items, unallocated receipts and whether each account is known (read by the index)."""
        states: dict[str, AccountState] = {}
        for chunk in _chunks(sorted(accounts)):
            among, listed = tx.one_of(2, chunk)
            where = f"site_id = $1 AND account_id {among}"
            for account, head, kind, ref, due, amount in await tx.fetch(
                    "SELECT account_id, head, kind, ref, due_date, SUM(amount_minor) FROM dues_entries "
                    f"WHERE {where} GROUP BY account_id, head, kind, ref, due_date", site, *listed):
                state = states.setdefault(account, AccountState(known=True))
                if amount:
                    state.items.append(DuesItem(head, LineKind(kind), int(amount), rows.day(due), ref))
            for account, receipt, tag, amount in await tx.fetch(
                    "SELECT account_id, receipt, tag, SUM(amount_minor) FROM dues_credits "
                    f"WHERE {where} GROUP BY account_id, receipt, tag HAVING SUM(amount_minor) <> 0 "
                    "ORDER BY MIN(seq)", site, *listed):
                states.setdefault(account, AccountState()).receipts.append(Source(receipt, int(amount), tag))
            for (account,) in await tx.fetch(f"SELECT DISTINCT account_id FROM dues_documents WHERE {where}",
                                             site, *listed):
                states.setdefault(account, AccountState()).known = True
        for state in states.values():
            state.known = state.known or bool(state.receipts)
        return states

    async def _named_bills(self, tx: Tx, site: str, numbers: set[str]) -> dict[str, tuple[str, bool]]:
        """bill number -> (its account, cancelled), for the bills payments name."""
        found: dict[str, tuple[str, bool]] = {}
        for chunk in _chunks(sorted(numbers)):
            among, listed = tx.one_of(2, chunk)
            cancelled = {n for (n,) in await tx.fetch(
                f"SELECT corrects FROM dues_documents WHERE site_id = $1 AND corrects {among} AND cancels",
                site, *listed)}
            for number, account in await tx.fetch(
                    "SELECT number, account_id FROM dues_documents WHERE site_id = $1 AND doc_type = 'bill' "
                    f"AND number {among}", site, *listed):
                found[number] = (account, number in cancelled)
        return found

    # ------------------------------------------------------------ advances used by a bill run

    async def _after_issue(self, tx: Tx, batch: IssueBatch, seq: int) -> None:
        """The accounts' advances pay the bills just issued, by the batch's rule."""
        accounts = {bill.account_id for bill in batch.bills}
        paying = await self._credit_holders(tx, batch.site_id) & accounts
        if not paying:
            return
        written = await self._use_credits(tx, batch.site_id, paying, batch.bill_date, batch.actor,
                                          batch.allocation or AllocationRule())
        await self._write(tx, written, {}, seq)
        used = sum(r[9] for r in written.allocations if r[3])
        await self._audit(tx, batch.site_id, batch.actor, "advances", batch.cycle_id,
                          f"advances of {len(paying)} accounts paid {used} of the cycle's bills", seq)

    @staticmethod
    async def _credit_holders(tx: Tx, site_id: str) -> set[str]:
        """The accounts with a receipt's money not yet allocated."""
        holders = await tx.fetch("SELECT DISTINCT account_id FROM dues_credits WHERE site_id = $1 "
                                 "GROUP BY account_id, receipt HAVING SUM(amount_minor) > 0", site_id)
        return {a for (a,) in holders}

    async def _use_credits(self, tx: Tx, site_id: str, accounts: set[str], on: dt.date, actor: str,
                           rule: AllocationRule) -> Written:
        """The rows of the accounts' credits and unallocated money paying their open items by `rule`."""
        states = await self._states(tx, site_id, accounts)
        written = Written(site_id)
        for account in sorted(accounts):
            state = states.get(account, AccountState())
            sources = credit_sources(state.items) + state.receipts
            _apply(account, allocate(state.items, sources, rule), on, actor, written, state)
        return written


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[at:at + IN_LIST_MAX] for at in range(0, len(values), IN_LIST_MAX)]


def _netted(credits: list[tuple]) -> list[tuple]:
    """One credit row per (operation, receipt, tag): the net of the operation's
    movements (a payment allocated whole writes none), the first row's day and why."""
    net: dict[tuple, list] = {}
    for stamp, site, account, receipt, tag, amount, on, why in credits:
        row = net.get((stamp, receipt, tag))
        if row is None:
            net[stamp, receipt, tag] = [stamp, site, account, receipt, tag, amount, on, why]
        else:
            row[5] += amount
    return [tuple(row) for row in net.values() if row[5]]


def _book(request: PaymentRequest, receipt: str, state: AccountState, bills: dict[str, tuple[str, bool]],
          written: Written) -> tuple[dict, dict]:
    """Decide and allocate one payment against its account's state (updated); (summary, details)."""
    flags, hold, suspense = _flags(request, state, bills)
    details = {"bank": request.bank, "bill": request.bill, "flags": flags, "note": request.note,
               "instrument_date": request.instrument_date.isoformat() if request.instrument_date else ""}
    own = Source(receipt, request.amount_minor, request.tag)
    allocations: list[Allocation] = []
    if not suspense:
        written.credits.append((receipt, written.site_id, request.account_id, receipt, request.tag,
                                request.amount_minor, request.received_on, "payment"))
        if hold:
            state.receipts.append(own)
        else:
            sources = credit_sources(state.items) + state.receipts + [own]
            allocations = allocate(state.items, sources, request.rule, bill=request.bill)
            _apply(request.account_id, allocations, request.received_on, request.actor, written, state, own)
    mine = [a for a in allocations if a.source.ref == receipt and a.source.item is None]
    allocated = sum(a.amount_minor for a in mine)
    if not suspense and not hold and allocated < request.amount_minor:
        flags.append(Flag.ADVANCE.value)
    summary = {"receipt": receipt, "account": request.account_id, "amount_minor": request.amount_minor,
               "allocated_minor": allocated,
               "advance_minor": 0 if suspense else request.amount_minor - allocated,
               "allocations": [[a.item.bill_ref, a.item.head, a.amount_minor] for a in mine],
               "flags": flags, "held": hold, "suspense": suspense}
    return summary, details


def _flags(request: PaymentRequest, state: AccountState, bills: dict[str, tuple[str, bool]]
           ) -> tuple[list[str], bool, bool]:
    """(flags, hold, suspense) of a payment (see PaymentRequest)."""
    where = f"payment {request.key}"
    if not state.known:
        if request.strict:
            return [Flag.UNKNOWN_ACCOUNT.value], False, True
        raise NotFound(f"account {request.account_id!r} has no dues or bills in site {request.site_id!r}; "
                       "nothing was written", where=where)
    if not request.bill:
        return [], False, False
    bill = bills.get(request.bill)
    if bill is None or bill[0] != request.account_id:
        if request.strict:
            return [Flag.UNKNOWN_BILL.value], True, False
        raise NotFound(f"no bill {request.bill!r} of account {request.account_id!r}; nothing was written",
                       where=where)
    owed = sum(i.amount_minor for i in state.items if i.bill_ref == request.bill)
    flag = Flag.BILL_CANCELLED if bill[1] else Flag.BILL_SETTLED if owed <= 0 else \
        Flag.AMOUNT_MISMATCH if owed != request.amount_minor else None
    if flag is None:
        return [], False, False
    hold = request.strict
    return ([flag.value] if hold or flag is not Flag.AMOUNT_MISMATCH else []), hold, False


def _apply(account: str, allocations: Iterable[Allocation], on: dt.date, actor: str, written: Written,
           state: AccountState, own: Source | None = None) -> None:
    """The rows of `allocations` (entries, allocation rows, credit debits), all
    stamped with the operation of `own` (a bill run's: none), and the state after them."""
    paid: dict[DuesItem, int] = {}
    spent: dict[str, int] = {}
    stamp, site = own.ref if own else "", written.site_id
    for a in allocations:
        item, amount, source = a.item, a.amount_minor, a.source
        paid[item] = paid.get(item, 0) + amount
        credit_ref = ""
        if source.item is None:  # a receipt's money
            written.credits.append((stamp, site, account, source.ref, source.tag, -amount, on, "allocation"))
            spent[source.ref] = spent.get(source.ref, 0) + amount
        else:  # a credit item set against a due: the credit is used up as the due is paid
            credit = source.item
            paid[credit] = paid.get(credit, 0) - amount
            written.entries.append((stamp, site, account, credit.head, _KIND_TEXT[credit.kind], amount,
                                    credit.due_date, credit.bill_ref, f"set against {item.bill_ref}", actor))
            credit_ref = f"{credit.bill_ref}:{credit.head}"
        note = f"credit {credit_ref}" if credit_ref else source.ref
        kind = _KIND_TEXT[item.kind]
        written.entries.append((stamp, site, account, item.head, kind, -amount, item.due_date, item.bill_ref,
                                note, actor))
        written.allocations.append((stamp, site, account, "" if credit_ref else source.ref, credit_ref,
                                    item.bill_ref, item.head, kind, item.due_date, amount, on))
    if paid:  # new items only for those paid (dataclasses.replace is slow)
        state.items = [i if i not in paid else DuesItem(i.head, i.kind, i.amount_minor - paid[i], i.due_date,
                                                         i.bill_ref)
                       for i in state.items if i.amount_minor != paid.get(i, 0)]
    receipts = [r if r.ref not in spent else Source(r.ref, r.amount_minor - spent[r.ref], r.tag, r.item)
                for r in state.receipts]
    if own is not None:
        receipts.append(Source(own.ref, own.amount_minor - spent.get(own.ref, 0), own.tag))
    state.receipts = [r for r in receipts if r.amount_minor]
