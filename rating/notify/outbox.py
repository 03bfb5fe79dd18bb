"""The outbox: notices waiting to be sent, claimed by a relay, answered once.

A notice is written in the transaction of its cause (`enqueue_in`, called
from the bill issue, or by the planner in its own) under a unique key per
(bill or event, step, channel): a second row for the same key is never
written, however often the cause or the planner runs. A relay claims due
rows (state `sending`, a lease, one more attempt), sends them and records
each answer: sent, retry later (backoff), bad address (the contact is
marked invalid and its other queued notices are cancelled) or refused. A
row whose lease ran out (its relay died between sending and recording) is
put back by `reap`: it may reach the provider twice, which the provider's
idempotency key (`Claimed.idempotency_key`, the same on every attempt)
is there to catch. After `attempts_max` attempts a row is failed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from rating.billing.ledger import IssueBatch, OpResult
from rating.billing.ledger_sql import SqlDuesLedger, Tx
from rating.notify.tables import NotifyTables, insert_ignore, now_us, placeholders

COLUMNS = ("note_key", "site_id", "account_id", "cause", "ref", "step", "channel", "address", "template",
           "fields", "state", "attempts", "attempts_max", "not_before_us", "lease_until_us", "created_us",
           "updated_us", "provider_ref", "answer")
STAFF_COLUMNS = ("site_id", "account_id", "channel", "address", "reason", "at_us", "resolved_us")
LOG_COLUMNS = ("outbox_id", "site_id", "account_id", "at_us", "attempt", "outcome", "detail")
_CLAIMED = ("id, note_key, site_id, account_id, cause, ref, step, channel, address, template, fields, "
            "attempts, attempts_max")
_VALUES_ROWS_MAX = 500  # rows per UPDATE ... FROM (VALUES ...): well inside both parameter limits
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def notice_key(site_id: str, ref: str, step: str, channel: str) -> str:
    return f"{site_id}|{ref}|{step}|{channel}"


class Notice(NamedTuple):  # a tuple: a cycle's plan makes 100,000s of them
    """A notice to write: to whom, about what (`ref`: the bill or event), at
    which step, through which channel and template, with exactly the fields
    the template uses; not sent before `not_before_us`."""

    site_id: str
    account_id: str
    cause: str  # bill_issued | due_step | payment | ...
    ref: str
    step: str
    channel: str
    address: str
    template: str
    fields: Mapping[str, object]
    not_before_us: int
    attempts_max: int = 5

    @property
    def key(self) -> str:
        return notice_key(self.site_id, self.ref, self.step, self.channel)

    def record(self, now_us: int) -> tuple:
        return (self.key, self.site_id, self.account_id, self.cause, self.ref, self.step, self.channel,
                self.address, self.template, _dumps(dict(self.fields)), "queued", 0, self.attempts_max,
                self.not_before_us, 0, now_us, now_us, "", "")


@dataclass(frozen=True)
class Claimed:
    """A row a relay holds (state `sending`) until it records an answer."""

    outbox_id: int
    key: str
    site_id: str
    account_id: str
    cause: str
    ref: str
    step: str
    channel: str
    address: str
    template: str
    fields: dict
    attempts: int
    attempts_max: int

    @property
    def idempotency_key(self) -> str:
        """What the provider dedups on: the same for every attempt of the row."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:32]


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # timeout, 5xx, connection refused: try again later
    BAD_ADDRESS = "bad_address"  # the provider says the address cannot be reached: never again
    REFUSED = "refused"  # the provider refused this message (4xx): retrying would not help


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    provider_ref: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Row(Claimed):
    """An outbox row as listed (plan, export, tests): what a relay claims, and where it stands."""

    state: str
    not_before_us: int
    provider_ref: str
    answer: str


IssueNotices = Callable[[Tx, IssueBatch, list[tuple]], Awaitable[Iterable[Notice]]]
PaymentNotices = Callable[[Tx, str, list[OpResult]], Awaitable[Iterable[Notice]]]


class Outbox:
    def __init__(self, ledger: SqlDuesLedger):
        self.ledger = ledger
        self.tables = NotifyTables(ledger)

    async def open(self) -> None:
        await self.tables.create()

    def on_issue(self, notices: IssueNotices) -> None:
        """Write `await notices(tx, batch, bill rows)` inside every bill issue of the
        ledger: a bill and its notices commit together, or neither."""
        async def hook(tx: Tx, batch: IssueBatch, docs: list[tuple]) -> None:
            await self.enqueue_in(tx, await notices(tx, batch, docs), now_us())
        self.ledger.issue_hooks = (*self.ledger.issue_hooks, hook)

    def on_payment(self, notices: PaymentNotices) -> None:
        """Write `await notices(tx, site, first results)` inside every new payment of
        the ledger (a replayed one writes nothing): a receipt and its notice commit together."""
        async def hook(tx: Tx, site_id: str, results: list[OpResult]) -> None:
            await self.enqueue_in(tx, await notices(tx, site_id, results), now_us())
        self.ledger.payment_hooks = (*self.ledger.payment_hooks, hook)

    async def enqueue(self, notices: Sequence[Notice], now_us: int) -> int:
        """Write the notices that are new by key (their own transaction); how many were."""
        async with self.tables.writing() as tx:
            return await self.enqueue_in(tx, notices, now_us)

    async def enqueue_in(self, tx: Tx, notices: Iterable[Notice], now_us: int) -> int:
        """The same inside a caller's transaction: the notices commit with their cause."""
        records = [n.record(now_us) for n in notices]
        return await insert_ignore(tx, COLUMNS, records, table="notify_outbox")

    async def claim(self, now_us: int, *, limit: int, lease_s: float, site_id: str = "") -> list[Claimed]:
        """Due queued rows (of one site, or all), oldest first, now `sending` until
        the lease runs out."""
        args: list[object] = [now_us + int(lease_s * 1_000_000), now_us, now_us]
        site = ""
        if site_id:
            args.append(site_id)
            site = " AND site_id = $4"
        args.append(limit)
        sql = ("UPDATE notify_outbox SET state = 'sending', attempts = attempts + 1, lease_until_us = $1, "
               "updated_us = $2 WHERE id IN (SELECT id FROM notify_outbox WHERE state = 'queued' "
               f"AND not_before_us <= $3{site} ORDER BY not_before_us, id LIMIT ${len(args)}"
               f"{self.tables.skip_locked}) RETURNING {_CLAIMED}")
        async with self.tables.writing() as tx:
            found = await tx.fetch(sql, *args)
        claimed = [Claimed(*_claimed(r)) for r in found]
        return sorted(claimed, key=lambda c: c.outbox_id)

    async def finish(self, answers: Sequence[tuple[Claimed, Answer]], now_us: int, *,
                     backoff_s: Sequence[float]) -> None:
        """Record each claimed row's answer, and its log row, in one transaction."""
        moves = [_move(c, a, now_us, backoff_s) for c, a in answers]
        async with self.tables.writing() as tx:
            await _update(tx, moves, now_us)
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (c.outbox_id, c.site_id, c.account_id, now_us, c.attempts, a.outcome.value, a.detail)
                for c, a in answers])
            for c, a in answers:
                if a.outcome is Outcome.BAD_ADDRESS:
                    await invalidate(tx, c.site_id, c.channel, c.address, a.detail or "bad address", now_us)

    async def defer(self, rows: Sequence[tuple[Claimed, int, str]], now_us: int) -> None:
        """Put claimed rows back, unsent, until a later time: (row, until_us, why).
        The attempt is given back: a deferral is not a failure."""
        async with self.tables.writing() as tx:
            await _update(tx, [(c.outbox_id, "queued", c.attempts - 1, until, "", why)
                               for c, until, why in rows], now_us)
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (c.outbox_id, c.site_id, c.account_id, now_us, c.attempts, "deferred", why)
                for c, _, why in rows])

    async def cancel(self, rows: Sequence[tuple[Claimed, str]], now_us: int) -> None:
        """Cancel claimed rows that must not go (paid, opted out): (row, why)."""
        async with self.tables.writing() as tx:
            await _update(tx, [(c.outbox_id, "cancelled", c.attempts - 1, 0, "", why) for c, why in rows],
                          now_us)
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (c.outbox_id, c.site_id, c.account_id, now_us, c.attempts, "cancelled", why)
                for c, why in rows])

    async def reap(self, now_us: int) -> int:
        """Rows whose relay held them past the lease: queued again, or failed
        when they had their last attempt; how many."""
        async with self.tables.writing() as tx:
            found = await tx.fetch(
                "UPDATE notify_outbox SET state = CASE WHEN attempts >= attempts_max THEN 'failed' "
                "ELSE 'queued' END, not_before_us = $1, updated_us = $2, answer = 'lease expired' "
                "WHERE state = 'sending' AND lease_until_us < $3 RETURNING id, site_id, account_id, attempts",
                now_us, now_us, now_us)
            await tx.insert_many("notify_log", LOG_COLUMNS, [
                (r[0], r[1], r[2], now_us, r[3], "reaped", "lease expired") for r in found])
        return len(found)

    async def cancel_queued(self, tx: Tx, site_id: str, *, account_id: str, channel: str = "", ref: str = "",
                            why: str, now_us: int) -> int:
        """Inside a caller's transaction: cancel an account's queued rows (of one
        channel, or one bill); rows being sent cannot be recalled."""
        sql = ("UPDATE notify_outbox SET state = 'cancelled', answer = $1, updated_us = $2 "
               "WHERE site_id = $3 AND account_id = $4 AND state = 'queued'")
        args: list[object] = [why, now_us, site_id, account_id]
        for column, value in (("channel", channel), ("ref", ref)):
            if value:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        found = await tx.fetch(sql + " RETURNING id, attempts", *args)
        await tx.insert_many("notify_log", LOG_COLUMNS, [
            (r[0], site_id, account_id, now_us, r[1], "cancelled", why) for r in found])
        return len(found)

    async def sent_since(self, site_id: str, accounts: Sequence[str], since_us: int) -> dict[str, list[int]]:
        """Per account, when its rows were sent after a time."""
        if not accounts:
            return {}
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT account_id, updated_us FROM notify_outbox WHERE site_id = $1 "
                                   f"AND updated_us > $2 AND state = 'sent' "
                                   f"AND account_id IN ({placeholders(3, len(accounts))})",
                                   site_id, since_us, *accounts)
        times: dict[str, list[int]] = {}
        for account, at in found:
            times.setdefault(account, []).append(int(at))
        return times

    async def rows(self, site_id: str, *, account_id: str = "", state: str = "", key: str = "",
                   after_id: int = 0, limit: int = 1000) -> list[Row]:
        """The site's rows in id order (after `after_id`), of one account, state or key."""
        sql = (f"SELECT {_CLAIMED}, state, not_before_us, provider_ref, answer FROM notify_outbox "
               "WHERE site_id = $1 AND id > $2")
        args: list[object] = [site_id, after_id]
        for column, value in (("account_id", account_id), ("state", state), ("note_key", key)):
            if value:
                args.append(value)
                sql += f" AND {column} = ${len(args)}"
        args.append(limit)
        async with self.tables.reading() as tx:
            found = await tx.fetch(f"{sql} ORDER BY id LIMIT ${len(args)}", *args)
        return [Row(*_claimed(r), *r[13:]) for r in found]

    async def log(self, site_id: str, account_id: str) -> list[tuple]:
        """An account's send log, oldest first: (outbox id, at, attempt, outcome, detail)."""
        async with self.tables.reading() as tx:
            return await tx.fetch("SELECT outbox_id, at_us, attempt, outcome, detail FROM notify_log "
                                  "WHERE site_id = $1 AND account_id = $2 ORDER BY log_id",
                                  site_id, account_id)

    async def export(self, site_id: str, account_id: str) -> list[dict]:
        """What was (or is to be) sent to a resident, each attempt with it: the
        resident's copy of the send log (JSON-ready)."""
        attempts: dict[int, list[dict]] = {}
        for outbox_id, at_us, attempt, outcome, detail in await self.log(site_id, account_id):
            attempts.setdefault(outbox_id, []).append({"at_us": at_us, "attempt": attempt, "outcome": outcome,
                                                       "detail": detail})
        rows = await self.rows(site_id, account_id=account_id, limit=1_000_000)
        return [{"cause": r.cause, "ref": r.ref, "step": r.step, "channel": r.channel, "address": r.address,
                 "template": r.template, "fields": r.fields, "state": r.state, "provider_ref": r.provider_ref,
                 "answer": r.answer, "attempts": attempts.get(r.outbox_id, [])} for r in rows]

    async def counts(self) -> dict[str, int]:
        """Outbox rows per state."""
        async with self.tables.reading() as tx:
            found = await tx.fetch("SELECT state, COUNT(*) FROM notify_outbox GROUP BY state")
        return {state: int(n) for state, n in found}


def _claimed(r: tuple) -> tuple:
    """A row's _CLAIMED columns as Claimed takes them (its fields parsed)."""
    return (*r[:10], json.loads(r[10]), r[11], r[12])


def _move(c: Claimed, a: Answer, now_us: int, backoff_s: Sequence[float]) -> tuple:
    """(id, state, attempts, not_before_us, provider_ref, answer) after an answer."""
    if a.outcome is Outcome.SENT:
        return (c.outbox_id, "sent", c.attempts, 0, a.provider_ref, a.detail)
    if a.outcome is Outcome.RETRY and c.attempts < c.attempts_max:
        wait_s = backoff_s[min(c.attempts, len(backoff_s)) - 1]
        return (c.outbox_id, "queued", c.attempts, now_us + int(wait_s * 1_000_000), a.provider_ref, a.detail)
    return (c.outbox_id, "failed", c.attempts, 0, a.provider_ref, a.detail)


async def _update(tx: Tx, moves: Sequence[tuple], now_us: int) -> None:
    """Set (id, state, attempts, not_before_us, provider_ref, answer) of many rows."""
    for start in range(0, len(moves), _VALUES_ROWS_MAX):
        chunk = moves[start:start + _VALUES_ROWS_MAX]
        values = ", ".join(
            f"(CAST(${6 * i + 1} AS bigint), ${6 * i + 2}, CAST(${6 * i + 3} AS bigint), "
            f"CAST(${6 * i + 4} AS bigint), ${6 * i + 5}, ${6 * i + 6})" for i in range(len(chunk)))
        await tx.execute(
            f"WITH v (id, state, attempts, not_before, provider_ref, answer) AS (VALUES {values}) "
            "UPDATE notify_outbox SET state = v.state, attempts = v.attempts, not_before_us = v.not_before, "
            f"provider_ref = v.provider_ref, answer = v.answer, updated_us = ${6 * len(chunk) + 1} "
            "FROM v WHERE notify_outbox.id = v.id", *(value for move in chunk for value in move), now_us)


async def invalidate(tx: Tx, site_id: str, channel: str, address: str, why: str, now_us: int) -> int:
    """An address the provider says is dead: its contacts (of any account) are
    marked, each put in the staff queue, their queued rows cancelled; how many rows."""
    marked = await tx.fetch("UPDATE notify_contacts SET invalid = $1, updated_us = $2 WHERE site_id = $3 "
                            "AND channel = $4 AND address = $5 RETURNING account_id", why, now_us, site_id,
                            channel, address)
    await tx.insert_many("notify_staff", STAFF_COLUMNS, [  # staff are told: the staff queue
        (site_id, account, channel, address, why, now_us, 0) for (account,) in marked])
    found = await tx.fetch("UPDATE notify_outbox SET state = 'cancelled', answer = $1, updated_us = $2 "
                           "WHERE site_id = $3 AND channel = $4 AND address = $5 AND state = 'queued' "
                           "RETURNING id, account_id, attempts", f"address invalid: {why}", now_us, site_id,
                           channel, address)
    await tx.insert_many("notify_log", LOG_COLUMNS, [
        (r[0], site_id, r[1], now_us, r[2], "cancelled", f"address invalid: {why}") for r in found])
    return len(found)
