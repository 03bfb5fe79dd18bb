"""Prepaid alerts: a wallet's balance events told to its resident through the outbox.

The prepaid ledger records a wallet's events (low balance, cut-off, deferred
cut-off, restored, recovered) when it settles the operation that caused
them; its `settle_hooks` write their notices in that same transaction, on
the ledger's own connection, when the dues ledger (whose database holds the
notify tables) is the same SQLite file or PostgreSQL schema, as under
`rating serve`. The event stream itself is untouched: the notices are rows
beside it. Events recorded while no hook was attached (recovery at start,
before the reminders are) are caught up by `catch_up` with the same keys.

One notice per operation, wallet and channel: the most severe event of the
operation for that wallet (a cut-off over the warning that came with it, the
lowest level reached over a higher one). Its key, `site|wallet-event:<event
id>|<event>|<channel>`, is unique: a settle retried, a catch-up run twice or
a follower that reads the events again writes nothing new. Consent as for
dues: a never-asked resident gets service email about their own wallet, SMS
and chat need an opt-in; quiet hours and the daily cap defer alerts too.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import NamedTuple

from rating.model.site import Site
from rating.notify.directory import Consent, Contact, allows
from rating.notify.outbox import COLUMNS, Notice
from rating.notify.planner import money
from rating.notify.rules import ReminderRules
from rating.notify.tables import now_us, placeholders
from rating.prepaid.wallets import EVENT_WORDS, EventType

# the most severe first: the one event of an operation and wallet a resident is told of
SEVERITY = (EventType.CUT_OFF, EventType.CUT_OFF_DEFERRED, EventType.RESTORED, EventType.LOW_BALANCE,
            EventType.RECOVERED)
_ROWS_PER_INSERT = 500  # 19 columns: inside both databases' parameter limits
_PARAM = re.compile(r"\$\d+")


class WalletEvent(NamedTuple):
    event_id: int
    seq: int
    type: EventType
    account_id: str
    wallet: str
    balance_minor: int
    level_minor: int


Query = tuple[str, list]  # a statement ($1, $2 ... placeholders) and its arguments
Steps = Generator[Query, list, int]  # yields statements, is sent their rows, returns the notices made


class Alerts:
    """The notices of a site's prepaid events, as its reminders.toml tells them."""

    def __init__(self, rules: ReminderRules, site: Site, site_id: str):
        self.rules, self.site, self.site_id = rules, site, site_id

    def pick(self, events: Iterable[WalletEvent]) -> list[WalletEvent]:
        """Per operation and wallet the most severe event the rules tell of (the
        lowest level of several warnings, the highest of several recoveries)."""
        told = [e for e in events if EVENT_WORDS[e.type] in self.rules.alerts]
        rank = {kind: i for i, kind in enumerate(SEVERITY)}
        best: dict[tuple[int, str, str], WalletEvent] = {}
        for e in told:
            key = (e.seq, e.account_id, e.wallet)
            held = best.get(key)
            if held is None or (rank[e.type], _depth(e)) < (rank[held.type], _depth(held)):
                best[key] = e
        return sorted(best.values())

    def notices(self, events: Sequence[WalletEvent], contacts: Mapping[str, Mapping[str, Contact]],
                consents: Mapping[tuple[str, str], Consent], at_us: int) -> list[Notice]:
        rules, found = self.rules, []
        for e in self.pick(events):
            for channel in rules.alert_channels:
                contact = contacts.get(e.account_id, {}).get(channel)
                consent = consents.get((e.account_id, channel), Consent.NEVER_ASKED)
                if contact is None or contact.invalid or not allows(consent, rules.kind(channel)):
                    continue
                word = EVENT_WORDS[e.type]
                template = rules.templates.pick(rules.alerts[word], "", contact.language or rules.language,
                                                rules.language)
                if template is None:
                    continue
                values = self._values(e, contact)
                found.append(Notice(self.site_id, e.account_id, "prepaid", f"wallet-event:{e.event_id}", word,
                                    channel, contact.address, template.stem,
                                    {k: values[k] for k in template.ordered_fields}, at_us,
                                    rules.attempts_max))
        return found

    def _values(self, e: WalletEvent, contact: Contact) -> dict[str, object]:
        levelled = e.type in (EventType.LOW_BALANCE, EventType.RECOVERED)
        link = self.rules.payment_link.format(site=self.site_id, account=e.account_id, bill="")
        return {"name": contact.name or e.account_id, "unit": e.account_id, "wallet": e.wallet,
                "balance": money(e.balance_minor, self.site),
                "level": money(e.level_minor, self.site) if levelled else "", "payment_link": link,
                "site_name": self.site.name, "language": contact.language or self.rules.language}

    def steps(self, seqs: Sequence[int], *, table_prefix: str = "") -> Steps:
        """The statements that write the notices of these operations' events, in
        whichever transaction runs them (the settle's, or a catch-up's): read the
        events, the accounts' contacts and consent, insert the new rows."""
        t = table_prefix
        events = [WalletEvent(r[0], r[1], EventType(r[2]), *r[3:]) for r in (yield (
            f"SELECT event_id, seq, type, account_id, wallet, balance_minor, level_minor FROM {t}events "
            f"WHERE seq IN ({placeholders(1, len(seqs))}) ORDER BY event_id", list(seqs)))]
        accounts = sorted({e.account_id for e in self.pick(events)})
        if not accounts:
            return 0
        args = [self.site_id, *accounts]
        where = f"site_id = $1 AND account_id IN ({placeholders(2, len(accounts))})"
        contacts: dict[str, dict[str, Contact]] = {}
        for r in (yield (f"SELECT account_id, channel, address, name, language, time_zone, invalid "
                         f"FROM {t}notify_contacts WHERE {where}", args)):
            contacts.setdefault(r[0], {})[r[1]] = Contact(*r)
        consents = {(r[0], r[1]): Consent(r[2]) for r in (yield (
            f"SELECT account_id, channel, state FROM {t}notify_consent WHERE {where}", args))}
        at_us = now_us()
        records = [n.record(at_us) for n in self.notices(events, contacts, consents, at_us)]
        for start in range(0, len(records), _ROWS_PER_INSERT):
            chunk = records[start:start + _ROWS_PER_INSERT]
            width = len(COLUMNS)
            rows = ", ".join(f"({placeholders(1 + i * width, width)})" for i in range(len(chunk)))
            yield (f"INSERT INTO {t}notify_outbox ({', '.join(COLUMNS)}) VALUES {rows} "
                   "ON CONFLICT DO NOTHING",
                   [value for record in chunk for value in record])
        return len(records)


def _depth(e: WalletEvent) -> int:
    """Among events of one kind: the lowest warning level, the highest recovered one."""
    return e.level_minor if e.type == EventType.LOW_BALANCE else -e.level_minor


def run_sqlite(steps: Steps, db) -> int:
    """Run the statements on an SQLite connection (the prepaid ledger's thread)."""
    rows: list | None = None  # a generator starts on None
    try:
        while True:
            sql, args = steps.send(rows)  # type: ignore[arg-type]
            rows = db.execute(_PARAM.sub("?", sql), args).fetchall()
    except StopIteration as done:
        return int(done.value)


async def run_tx(steps: Steps, fetch) -> int:
    """Run the statements through an async `fetch(sql, *args)` (asyncpg, or a dues ledger Tx)."""
    rows: list | None = None
    try:
        while True:
            sql, args = steps.send(rows)  # type: ignore[arg-type]
            rows = list(await fetch(sql, *args))
    except StopIteration as done:
        return int(done.value)


def same_database(prepaid_ledger, dues_ledger) -> bool:
    """Whether the prepaid ledger's tables sit beside the dues ledger's (and the notify tables)."""
    if prepaid_ledger.name != dues_ledger.name:
        return False
    if prepaid_ledger.name == "postgres":
        return (prepaid_ledger.dsn, prepaid_ledger.schema) == (dues_ledger.dsn, dues_ledger.schema)
    return prepaid_ledger.path.resolve() == dues_ledger.path.resolve()


def attach(alerts: Alerts, prepaid_ledger) -> None:
    """Write the alerts of every settle of the prepaid ledger in its transaction
    (the ledger must share the notify tables' database: the same SQLite file or
    PostgreSQL schema as the dues ledger)."""
    if prepaid_ledger.name == "postgres":
        prefix = f"{prepaid_ledger.schema}."

        async def hook(con, seqs: list[int]) -> None:
            await run_tx(alerts.steps(seqs, table_prefix=prefix), con.fetch)
        prepaid_ledger.settle_hooks = (*prepaid_ledger.settle_hooks, hook)
    else:
        prepaid_ledger.settle_hooks = (*prepaid_ledger.settle_hooks,
                                       lambda db, seqs: run_sqlite(alerts.steps(seqs), db))


async def catch_up(alerts: Alerts, tables, seqs: Sequence[int]) -> int:
    """The alerts of operations settled before `attach`, in a transaction of the dues
    ledger, whose database holds the events too; how many notices they call for (a
    key already in the outbox keeps its row: a repeat writes nothing)."""
    written = 0
    for start in range(0, len(seqs), _ROWS_PER_INSERT):
        async with tables.writing() as tx:
            written += await run_tx(alerts.steps(seqs[start:start + _ROWS_PER_INSERT]), tx.fetch)
    return written
