"""The notification tables on a dues ledger for the notify tests: one ledger
of `make_ledger` (tests/billing_ledgers.py) opened with its outbox and
directory, closed at the end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from rating.billing.ledger_sql import SqlDuesLedger
from rating.notify.channel import Message
from rating.notify.directory import Directory
from rating.notify.outbox import Claimed, Outbox


@contextlib.asynccontextmanager
async def opened(make_ledger) -> AsyncIterator[tuple[SqlDuesLedger, Outbox, Directory]]:
    ledger = make_ledger()
    await ledger.open()
    try:
        outbox = Outbox(ledger)
        await outbox.open()
        yield ledger, outbox, Directory(outbox)
    finally:
        await ledger.close()


def plain(row: Claimed) -> Message:
    """A relay's render without templates: the row's fields as they are."""
    return Message(row.address, row.template, row.fields, row.idempotency_key)
