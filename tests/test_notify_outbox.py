"""The outbox contract on both dues ledgers (SQLite file, PostgreSQL server):
one row per key, written with its cause; the relay's retries, backoff,
reaping and failures, against a real local HTTP sink."""

from __future__ import annotations

import asyncio

import pytest

from rating.billing.ledger import DuesConflict
from rating.notify.outbox import Notice, Outbox
from rating.notify.relay import Relay, RelayPolicy
from rating.notify.webhook import WebhookChannel
from tests.billing_drafts import MAY, SITE, batch, draft
from tests.notify_ledgers import opened, plain
from tests.notify_servers import HttpSink

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
T0 = 1_750_000_000.0  # the tests' clock, seconds
POLICY = RelayPolicy(lease_s=60, backoff_s=(10.0, 100.0), send_timeout_s=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sink():
    server = HttpSink().start()
    yield server
    server.close()


def notice(account: str = "F0001", *, ref: str = "B/25-26/000001", step: str = "-7", channel: str = "sms",
           attempts_max: int = 3, at: float = T0) -> Notice:
    return Notice(SITE, account, "due_step", ref, step, channel, "+919812345678", "reminder",
                  {"name": "Asha", "amount_due": "2,500.00"}, int(at * 1e6), attempts_max)


def with_outbox(make_ledger, action):
    async def go():
        async with opened(make_ledger) as (ledger, outbox, _):
            return await action(ledger, outbox)
    return asyncio.run(go())


def relay_for(outbox: Outbox, sink: HttpSink, clock: Clock, policy: RelayPolicy = POLICY) -> Relay:
    return Relay(outbox, {"sms": WebhookChannel(sink.url, name="sms", timeout_s=1.0)}, render=plain,
                 policy=policy, clock=clock)


def test_a_key_is_written_once_however_often_it_is_enqueued(make_ledger):
    async def go(ledger, outbox):
        first = await outbox.enqueue([notice(), notice(channel="email")], int(T0 * 1e6))
        again = await outbox.enqueue([notice(), notice(step="-1")], int(T0 * 1e6))
        return first, again, await outbox.rows(SITE)

    first, again, rows = with_outbox(make_ledger, go)
    assert (first, again) == (2, 1)
    assert sorted((r.step, r.channel, r.state) for r in rows) == [
        ("-1", "sms", "queued"), ("-7", "email", "queued"), ("-7", "sms", "queued")]


def test_bill_notices_commit_with_the_issue_and_a_refused_issue_leaves_none(make_ledger):
    async def bill_notices(tx, issue, docs):
        return [Notice(issue.site_id, d[5], "bill_issued", d[0], "issued", "email", "a@example.org",
                       "bill_issued", {"number": d[0]}, int(T0 * 1e6)) for d in docs]

    async def go(ledger, outbox):
        outbox.on_issue(bill_notices)
        await ledger.issue(batch([draft("F0001"), draft("F0002")]))
        with pytest.raises(DuesConflict):  # the same key, other drafts: refused, nothing written
            await ledger.issue(batch([draft("F0003")]))
        await ledger.issue(batch([draft("F0001"), draft("F0002")]))  # a replay writes nothing
        return await outbox.rows(SITE)

    rows = with_outbox(make_ledger, go)
    assert [(r.account_id, r.ref, r.fields) for r in rows] == [
        ("F0001", "B/25-26/000001", {"number": "B/25-26/000001"}),
        ("F0002", "B/25-26/000002", {"number": "B/25-26/000002"})]
    assert MAY.cycle_id  # the drafts' cycle


def test_the_relay_sends_once_with_the_providers_idempotency_key_and_records_its_answer(make_ledger, sink):
    clock = Clock()

    async def go(ledger, outbox):
        await outbox.enqueue([notice(), notice("F0002", ref="B2"), notice("F0003", ref="B3", at=T0 + 3600)],
                             int(T0 * 1e6))
        relay = relay_for(outbox, sink, clock)
        first, second = await relay.run_once(), await relay.run_once()
        return first, second, await outbox.rows(SITE), await outbox.log(SITE, "F0001")

    first, second, rows, log = with_outbox(make_ledger, go)
    assert first.outcomes == {"sent": 2, "reaped": 0} and second.outcomes == {"reaped": 0}
    assert [(r.account_id, r.state, r.attempts) for r in rows] == [
        ("F0001", "sent", 1), ("F0002", "sent", 1), ("F0003", "queued", 0)]  # F0003: not yet due
    assert {r.provider_ref for r in rows[:2]} == {"msg-1", "msg-2"}
    keys = {r["key"] for r in sink.requests}
    assert len(sink.requests) == 2 and len(keys) == 2 and all(len(k) == 32 for k in keys)
    assert sink.requests[0]["variables"] == {"name": "Asha", "amount_due": "2,500.00"}
    assert [entry[3] for entry in log] == ["sent"]


def test_a_5xx_is_retried_after_its_backoff_and_never_doubled(make_ledger, sink):
    clock = Clock()
    sink.statuses.extend([503, 502])

    async def go(ledger, outbox):
        await outbox.enqueue([notice()], int(T0 * 1e6))
        relay = relay_for(outbox, sink, clock)
        seen = [(await relay.run_once()).outcomes["retry"]]
        clock.now += 9  # backoff after attempt 1: 10 s
        seen.append((await relay.run_once()).outcomes["retry"])
        clock.now += 1
        seen.append((await relay.run_once()).outcomes["retry"])
        clock.now += 100
        seen.append((await relay.run_once()).outcomes["sent"])
        return seen, await outbox.rows(SITE)

    seen, rows = with_outbox(make_ledger, go)
    assert seen == [1, 0, 1, 1]
    assert [(r.state, r.attempts) for r in rows] == [("sent", 3)]
    assert len(sink.requests) == 3 and len({r["key"] for r in sink.requests}) == 1
    assert sink.duplicates == 0


def test_a_row_is_failed_after_its_last_attempt(make_ledger, sink):
    clock = Clock()
    sink.statuses.extend([500] * 5)

    async def go(ledger, outbox):
        await outbox.enqueue([notice(attempts_max=2)], int(T0 * 1e6))
        relay = relay_for(outbox, sink, clock)
        for _ in range(4):
            await relay.run_once()
            clock.now += 1000
        return await outbox.rows(SITE)

    rows = with_outbox(make_ledger, go)
    assert [(r.state, r.attempts) for r in rows] == [("failed", 2)]
    assert rows[0].answer.startswith("HTTP 500") and len(sink.requests) == 2


def test_a_row_left_in_sending_by_a_dead_relay_is_reaped_and_the_provider_catches_the_resend(
        make_ledger, sink):
    clock = Clock()

    async def go(ledger, outbox):
        await outbox.enqueue([notice()], int(T0 * 1e6))
        claimed = await outbox.claim(int(T0 * 1e6), limit=10, lease_s=60)
        channel = WebhookChannel(sink.url)  # sent, then the relay dies before recording
        await channel.send(plain(claimed[0]))
        await channel.close()
        relay = relay_for(outbox, sink, clock)
        early = await relay.run_once()
        clock.now += 61
        late = await relay.run_once()
        return early, late, await outbox.rows(SITE), await outbox.log(SITE, "F0001")

    early, late, rows, log = with_outbox(make_ledger, go)
    assert early.outcomes == {"reaped": 0}
    assert late.outcomes == {"reaped": 1, "sent": 1}
    assert [(r.state, r.attempts, r.provider_ref) for r in rows] == [("sent", 2, "msg-1")]
    assert sink.duplicates == 1  # the second send reached the provider, whose key check caught it
    assert [entry[3] for entry in log] == ["reaped", "sent"]


def test_a_bad_address_fails_the_row_cancels_its_queued_siblings_and_marks_the_contact(make_ledger, sink):
    clock = Clock()
    sink.statuses.append(410)

    async def go(ledger, outbox):
        async with outbox.tables.writing() as tx:
            await tx.execute("INSERT INTO notify_contacts VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                             SITE, "F0001", "sms", "+919812345678", "Asha", "en", "Asia/Kolkata", "", 0)
        await outbox.enqueue([notice(), notice(step="-1", at=T0 + 86400)], int(T0 * 1e6))
        report = await relay_for(outbox, sink, clock).run_once()
        async with outbox.tables.reading() as tx:
            contact = await tx.fetch("SELECT invalid FROM notify_contacts")
        return report, await outbox.rows(SITE), contact

    report, rows, contact = with_outbox(make_ledger, go)
    assert report.outcomes["bad_address"] == 1
    assert [(r.step, r.state) for r in rows] == [("-7", "failed"), ("-1", "cancelled")]
    assert contact[0][0].startswith("HTTP 410")


def test_a_provider_that_does_not_answer_in_time_is_a_retry(make_ledger, sink):
    clock = Clock()
    sink.delay_s = 0.5

    async def go(ledger, outbox):
        await outbox.enqueue([notice()], int(T0 * 1e6))
        relay = relay_for(outbox, sink, clock, RelayPolicy(send_timeout_s=0.1, backoff_s=(5.0,)))
        report = await relay.run_once()
        return report, await outbox.rows(SITE)

    report, rows = with_outbox(make_ledger, go)
    assert report.outcomes["retry"] == 1
    assert [(r.state, r.attempts, r.not_before_us) for r in rows] == [("queued", 1, int((T0 + 5) * 1e6))]


def test_the_servers_loop_relays_pass_after_pass_until_stopped(make_ledger, sink):
    clock = Clock()

    async def go(ledger, outbox):
        await outbox.enqueue([notice()], int(T0 * 1e6))
        stop = asyncio.Event()
        loop = asyncio.create_task(relay_for(outbox, sink, clock).run_forever(stop, interval_s=0.01))
        while not sink.requests:
            await asyncio.sleep(0.01)
        await outbox.enqueue([notice("F0002", ref="B2")], int(T0 * 1e6))  # a row that comes later
        while len(sink.requests) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, 5)
        return await outbox.counts()

    assert with_outbox(make_ledger, go) == {"sent": 2}
