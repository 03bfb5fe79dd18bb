"""kill -9 of a relay between sending and recording, on both dues ledgers:
its rows stay in `sending` until their lease runs out, then the next relay
sends them again with the same idempotency key, which the provider's own
duplicate check catches: at most that check stands between a crash and a
second message, and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rating.notify.outbox import Notice
from rating.notify.relay import Relay
from rating.notify.webhook import WebhookChannel
from tests.billing_drafts import SITE
from tests.notify_ledgers import opened, plain
from tests.notify_servers import HttpSink

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
ROOT = Path(__file__).resolve().parent.parent


def test_a_relay_killed_after_sending_loses_nothing_and_the_provider_catches_the_resend(make_ledger):
    sink = HttpSink().start()
    ledger_args = _ledger_args(make_ledger)

    async def with_outbox(action):
        async with opened(make_ledger) as (_, outbox, _):
            return await action(outbox)

    async def enqueue(outbox):
        await outbox.enqueue([Notice(SITE, f"F{i}", "due_step", f"B{i}", "d-7", "sms", f"+9198123456{i:02d}",
                                     "reminder.en", {"unit": f"F{i}"}, 0) for i in range(3)], 0)

    async def after(outbox):
        before = [r.state for r in await outbox.rows(SITE)]
        late = time.time() + 61  # past the dead relay's lease
        report = await Relay(outbox, {"sms": WebhookChannel(sink.url)}, render=plain,
                             clock=lambda: late).run_once()
        return before, report, await outbox.rows(SITE)

    try:
        asyncio.run(with_outbox(enqueue))
        child = subprocess.Popen([sys.executable, "-m", "tests.notify_relay_child", *ledger_args, sink.url],
                                 cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        lines = [child.stdout.readline().strip() for _ in range(4)]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        before, report, rows = asyncio.run(with_outbox(after))
    finally:
        sink.close()
    assert lines[-1] == "sent" and all(line.endswith(" sent") for line in lines[:3])
    assert before == ["sending"] * 3  # the dead relay recorded nothing
    assert report.outcomes == {"reaped": 3, "sent": 3}
    assert [(r.state, r.attempts) for r in rows] == [("sent", 2)] * 3
    assert sink.count == 6 and sink.duplicates == 3  # each reached the provider twice, caught by its key


def _ledger_args(make_ledger) -> list[str]:
    ledger = make_ledger()
    if ledger.name == "sqlite":
        return ["sqlite", str(ledger.path)]
    return ["postgres", ledger.dsn, ledger.schema]
