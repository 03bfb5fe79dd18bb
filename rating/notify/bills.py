"""What the planner reads of the dues ledger: its bills and what is open on
each, in two statements over the ledger's own tables (read only).

A cycle of 100,000 flats is planned in seconds only if the bills' bodies
(JSON) are not parsed for every flat: a `Bill` parses its body the first
time a template needs its lines or its addressee, and most flats without a
contact never do. Per (account, bill) sums of the entries are what is still
open on each bill; their sum per account is the account's balance, which
payments (entries too) lower the moment they land.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cached_property

from rating.billing.ledger_rows import day
from rating.notify.tables import NotifyTables, placeholders


@dataclass(frozen=True)
class Bill:
    """An issued bill as a notice speaks of it."""

    number: str
    account_id: str
    cycle_id: str
    issued_on: dt.date
    due_date: dt.date
    total_minor: int  # what the bill added to the dues
    body_text: str  # its document body, canonical JSON

    @cached_property
    def body(self) -> dict:
        return json.loads(self.body_text)

    @property
    def bill_to(self) -> str:
        return str(self.body.get("bill_to", ""))

    @property
    def lines(self) -> list[tuple[str, str, int]]:
        """(head, kind, amount_minor) of each line, as on the bill."""
        return [(line[0], line[1], line[2]) for line in self.body["lines"]]

    @property
    def total_due_minor(self) -> int:
        return int(self.body["total_due_minor"])


def bill_of_row(record: tuple) -> Bill:
    """A bill from its document row (rating.billing.ledger_rows.DOC_COLUMNS)."""
    return Bill(record[0], record[5], record[6], day(record[7]), day(record[8]), record[9], record[10])


async def bills(tables: NotifyTables, site_id: str) -> list[Bill]:
    """Every bill of the site, in issue order."""
    async with tables.reading() as tx:
        found = await tx.fetch("SELECT number, account_id, cycle_id, issued_on, due_date, total_minor, body "
                               "FROM dues_documents WHERE site_id = $1 AND doc_type = 'bill' ORDER BY seq, "
                               "number", site_id)
    return [Bill(n, a, c, day(i), day(d), int(t), b) for n, a, c, i, d, t, b in found]


async def open_by_bill(tables: NotifyTables, site_id: str) -> dict[str, dict[str, int]]:
    """Per account, per document or import reference, the sum of its entries."""
    async with tables.reading() as tx:
        found = await tx.fetch("SELECT account_id, ref, SUM(amount_minor) FROM dues_entries "
                               "WHERE site_id = $1 GROUP BY account_id, ref", site_id)
    sums: dict[str, dict[str, int]] = {}
    for account, ref, total in found:
        sums.setdefault(account, {})[ref] = int(total)
    return sums


async def owed(tables: NotifyTables, site_id: str, accounts: list[str]) -> dict[str, int]:
    """What each account owes: the sum of its entries (DuesLedger.balances summed
    over heads), for a relay's batch in one statement."""
    if not accounts:
        return {}
    async with tables.reading() as tx:
        found = await tx.fetch("SELECT account_id, SUM(amount_minor) FROM dues_entries WHERE site_id = $1 "
                               f"AND account_id IN ({placeholders(2, len(accounts))}) GROUP BY account_id",
                               site_id, *accounts)
    sums = dict.fromkeys(accounts, 0)
    sums.update({account: int(total) for account, total in found})
    return sums
