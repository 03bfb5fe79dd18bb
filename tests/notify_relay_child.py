"""A relay process that dies between sending and recording, for
tests/test_notify_crash.py:

    python -m tests.notify_relay_child sqlite PATH URL
    python -m tests.notify_relay_child postgres DSN SCHEMA URL

It claims the due rows, sends each through the webhook channel (the
provider answers "accepted"), says so on stdout and waits on stdin, so the
test kills it with SIGKILL before any answer is recorded.
"""

from __future__ import annotations

import asyncio
import sys
import time

from rating.notify.channel import Message
from rating.notify.outbox import Outbox
from rating.notify.webhook import WebhookChannel


async def main(args: list[str]) -> None:
    if args[0] == "sqlite":
        from rating.billing.ledger_sqlite import SqliteDuesLedger
        ledger = SqliteDuesLedger(args[1])
    else:
        from rating.billing.ledger_postgres import PostgresDuesLedger
        ledger = PostgresDuesLedger(args[1], schema=args[2])
    await ledger.open()
    outbox = Outbox(ledger)
    await outbox.open()
    claimed = await outbox.claim(time.time_ns() // 1000, limit=100, lease_s=60)
    channel = WebhookChannel(args[-1])
    for row in claimed:
        answer = await channel.send(Message(row.address, row.template, row.fields, row.idempotency_key))
        print(row.key, answer.outcome.value, flush=True)
    print("sent", flush=True)
    sys.stdin.readline()  # killed here


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
