"""Planning and gating reminders on both dues ledgers: the cadence step of the
day, consent, contacts, tone and language, fields kept to the template's;
the bill-issued notice in the issue's transaction; a payment, quiet hours
and the daily cap at the relay."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from rating.billing.ledger import DuesPost, Entry
from rating.model.site import Site
from rating.notify.directory import Consent, Contact, Directory
from rating.notify.gate import ReminderGate, renderer
from rating.notify.planner import Planner, issue_notices, plan
from rating.notify.relay import Relay
from rating.notify.rules import load_reminders
from rating.notify.timing import after_quiet_us
from rating.notify.webhook import WebhookChannel
from tests.billing_drafts import MAY, SITE, batch, draft
from tests.notify_ledgers import opened
from tests.notify_servers import HttpSink

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"
GREEN = Site(name="Green Meadows", time_zone="Asia/Kolkata")
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
WEEK_BEFORE = dt.date(2025, 6, 8)  # MAY's bills fall due on 2025-06-15


def at_ist(day: dt.date, hour: int, minute: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=IST).timestamp() * 1_000_000)


@pytest.fixture
def rules(tmp_path):
    shutil.copytree(DEMO, tmp_path / "site")
    return load_reminders(tmp_path / "site" / "reminders.toml", GREEN)


@pytest.fixture
def sink():
    server = HttpSink().start()
    yield server
    server.close()


async def residents(directory: Directory) -> None:
    """F0001: email and SMS (opted in), late payer; F0002: email in Hindi, never asked;
    F0003: SMS never asked; F0004: email opted out; F0005 owes below the minimum."""
    add = directory.set_contact
    await add(SITE, Contact("F0001", "email", "asha@example.org", "Asha Rao"), channel_kind="smtp", actor="t")
    await add(SITE, Contact("F0001", "sms", "098123 45678", "Asha Rao"), channel_kind="webhook", actor="t")
    await add(SITE, Contact("F0002", "email", "ravi@example.org", "रवि", "hi"), channel_kind="smtp",
              actor="t")
    await add(SITE, Contact("F0003", "sms", "+91 98123 45679", "Li Hua", "zh"), channel_kind="webhook",
              actor="t")
    await add(SITE, Contact("F0004", "email", "meera@example.org", "Meera"), channel_kind="smtp", actor="t")
    await add(SITE, Contact("F0005", "email", "joe@example.org", "Joe"), channel_kind="smtp", actor="t")
    await directory.set_consent(SITE, "F0001", "sms", Consent.IN, source="form", actor="t")
    await directory.set_consent(SITE, "F0004", "email", Consent.OUT, source="form", actor="t")
    await directory.tag(SITE, "F0001", "habitual_late", actor="staff")


def with_site(make_ledger, rules, action):
    async def go():
        async with opened(make_ledger) as (ledger, outbox, directory):
            await residents(directory)
            return await action(ledger, outbox, directory, Planner(rules, GREEN, SITE))
    return asyncio.run(go())


BILLS = [draft("F0001"), draft("F0002"), draft("F0003"), draft("F0004"), draft("F0005", maintenance=5_000)]


def test_a_week_before_the_due_date_each_resident_gets_what_consent_and_contacts_allow(make_ledger, rules):
    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        early = await plan(ledger, directory, planner, today=WEEK_BEFORE - dt.timedelta(days=1), now_us=0)
        notices = await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0)
        written = await outbox.enqueue(notices, 0)
        again = await outbox.enqueue(await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0), 0)
        return early, notices, written, again

    early, notices, written, again = with_site(make_ledger, rules, go)
    assert early == []  # before the first step
    assert [(n.account_id, n.channel, n.step, n.template, n.address) for n in notices] == [
        ("F0001", "email", "d-7", "reminder.empathetic.en", "asha@example.org"),  # tone of her tag
        ("F0001", "sms", "d-7", "reminder.empathetic.en", "+919812345678"),  # E.164
        ("F0002", "email", "d-7", "reminder.hi", "ravi@example.org"),  # never asked: service email only
    ]  # F0003: SMS never asked; F0004: opted out; F0005: owes less than the minimum
    assert (written, again) == (3, 0)
    asha, _, ravi = notices
    assert asha.fields == {"amount_due": "INR 2,500.00", "due_date": "2025-06-15", "name": "Asha Rao",
                           "payment_link": "https://pay.example.org/green-meadows/F0001", "unit": "F0001"}
    assert set(ravi.fields) == rules.templates.by_stem("reminder.hi").fields  # only the template's fields
    assert asha.not_before_us == at_ist(WEEK_BEFORE, 10)


def test_the_step_of_the_day_escalates_to_overdue_and_to_a_letter_of_demand(make_ledger, rules):
    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        seen = {}
        for day in (dt.date(2025, 6, 14), dt.date(2025, 6, 16), dt.date(2025, 7, 20)):
            notices = await plan(ledger, directory, planner, today=day, now_us=0)
            seen[day] = sorted({(n.step, n.template) for n in notices if n.account_id == "F0002"})
        return seen

    seen = with_site(make_ledger, rules, go)
    assert list(seen.values()) == [[], [("d+1", "overdue.hi")], [("d+30", "demand.en")]]  # d-1: SMS only


def test_a_bill_issued_notice_is_written_by_the_issue_itself(make_ledger, rules):
    async def go(ledger, outbox, directory, planner):
        outbox.on_issue(issue_notices(planner, directory))
        await ledger.issue(batch(BILLS))
        await ledger.issue(batch(BILLS))  # replayed: nothing more
        return await outbox.rows(SITE)

    rows = with_site(make_ledger, rules, go)
    assert [(r.account_id, r.channel, r.step, r.cause, r.template) for r in rows] == [
        ("F0001", "email", "issued", "bill_issued", "bill_issued.en"),
        ("F0001", "sms", "issued", "bill_issued", "bill_issued.en"),
        ("F0002", "email", "issued", "bill_issued", "bill_issued.en")]  # no Hindi one: the site's language
    assert rows[0].fields["breakdown"] == [{"amount": "INR 2,500.00", "head": "maintenance"}]


def relay(ledger, outbox, rules, sink, now_us: int) -> Relay:
    channels = {name: WebhookChannel(sink.url, name=name) for name in ("email", "sms")}
    return Relay(outbox, channels, render=renderer(rules), gate=ReminderGate(outbox, rules, SITE),
                 clock=lambda: now_us / 1e6, site_id=SITE)


def test_a_payment_cancels_what_is_queued_and_the_rest_goes_with_its_text(make_ledger, rules, sink):
    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        await outbox.enqueue(await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0), 0)
        paid = Entry("F0002", "maintenance", "charge", -250_000, MAY.due_date, "PAY-1", "paid at the desk")
        await ledger.post(DuesPost("pay:1", "payment", SITE, "desk", (paid,), "cash"))
        report = await relay(ledger, outbox, rules, sink, at_ist(WEEK_BEFORE, 10, 5)).run_once()
        return report, await outbox.rows(SITE)

    report, rows = with_site(make_ledger, rules, go)
    assert report.outcomes == {"sent": 2, "cancelled": 1, "reaped": 0}
    assert [(r.account_id, r.state) for r in rows] == [("F0001", "sent"), ("F0001", "sent"),
                                                        ("F0002", "cancelled")]
    assert rows[2].answer == "paid: owes 0"
    assert {r["template"] for r in sink.requests} == {"reminder.empathetic"}


def test_quiet_hours_and_the_daily_cap_defer_and_never_drop(make_ledger, rules, sink):
    capped = dataclasses.replace(rules, daily_cap=1)

    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        await outbox.enqueue(await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0), 0)
        night = at_ist(WEEK_BEFORE, 22)
        first = await relay(ledger, outbox, capped, sink, night).run_once()
        queued = await outbox.rows(SITE, state="queued")
        morning = at_ist(WEEK_BEFORE + dt.timedelta(days=1), 8)
        second = await relay(ledger, outbox, capped, sink, morning).run_once()
        later = await relay(ledger, outbox, capped, sink, morning + 86_400_000_000).run_once()
        return first, queued, second, later, await outbox.rows(SITE)

    first, queued, second, later, rows = with_site(make_ledger, rules, go)
    assert first.outcomes["deferred"] == 3 and first.outcomes["sent"] == 0
    assert {r.not_before_us for r in queued} == {at_ist(WEEK_BEFORE + dt.timedelta(days=1), 8)}
    assert second.outcomes["sent"] == 2 and second.outcomes["deferred"] == 1  # Asha: one a day
    assert later.outcomes["sent"] == 1
    assert [r.state for r in rows] == ["sent"] * 3 and all(r.attempts == 1 for r in rows)


def test_an_opt_out_cancels_the_channels_queued_notices_at_once(make_ledger, rules):
    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        await outbox.enqueue(await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0), 0)
        cancelled = await directory.set_consent(SITE, "F0001", "sms", Consent.OUT, source="STOP", actor="sms")
        audit = [a.action for a in await ledger.audit(SITE)]
        return cancelled, await outbox.rows(SITE), audit

    cancelled, rows, audit = with_site(make_ledger, rules, go)
    assert cancelled == 1
    assert [(r.channel, r.state) for r in rows if r.account_id == "F0001"] == [("email", "queued"),
                                                                                 ("sms", "cancelled")]
    assert audit.count("consent") == 3 and "tag" in audit


def test_quiet_hours_across_midnight_end_in_the_residents_morning():
    quiet = (dt.time(21), dt.time(8))
    day = dt.date(2025, 6, 8)
    assert after_quiet_us(at_ist(day, 20, 59), "Asia/Kolkata", quiet) == at_ist(day, 20, 59)
    assert after_quiet_us(at_ist(day, 21), "Asia/Kolkata", quiet) == at_ist(day + dt.timedelta(days=1), 8)
    assert after_quiet_us(at_ist(day, 3), "Asia/Kolkata", quiet) == at_ist(day, 8)
    assert after_quiet_us(at_ist(day, 8), "Asia/Kolkata", quiet) == at_ist(day, 8)


def test_autopay_or_a_payment_plan_suppresses_reminders_and_cancels_what_is_queued(make_ledger, rules, sink):
    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        await outbox.enqueue(await plan(ledger, directory, planner, today=WEEK_BEFORE, now_us=0), 0)
        await directory.tag(SITE, "F0002", "autopay", actor="staff")
        await directory.tag(SITE, "F0001", "payment_plan", actor="staff")
        replanned = await plan(ledger, directory, planner, today=WEEK_BEFORE + dt.timedelta(days=6), now_us=0)
        report = await relay(ledger, outbox, rules, sink, at_ist(WEEK_BEFORE, 10, 5)).run_once()
        return replanned, report, await outbox.rows(SITE)

    replanned, report, rows = with_site(make_ledger, rules, go)
    assert replanned == []
    assert report.outcomes == {"cancelled": 3, "reaped": 0}
    assert {r.answer for r in rows} == {"covered: payment_plan", "covered: autopay"}


def test_a_payment_writes_its_receipt_notice_in_its_own_transaction_once(make_ledger, rules):
    from rating.billing.ledger_payment_types import Method, PaymentRequest
    from rating.notify.planner import payment_notices

    def paid(key, amount):
        return PaymentRequest(key, SITE, "F0001", Method.CASH, amount, dt.date(2025, 6, 10), "desk",
                              reference=f"cash-{key}")

    async def go(ledger, outbox, directory, planner):
        await ledger.issue(batch(BILLS))
        outbox.on_payment(payment_notices(planner, directory))
        await ledger.pay(paid("p1", 100_000))
        await ledger.pay(paid("p1", 100_000))  # replayed: nothing more
        with pytest.raises(Exception, match="p1"):  # the key with another payment: refused
            await ledger.pay(paid("p1", 5))
        return await outbox.rows(SITE)

    rows = with_site(make_ledger, rules, go)
    assert [(r.account_id, r.cause, r.step, r.channel, r.template) for r in rows] == [
        ("F0001", "payment", "received", "email", "payment_received.en"),
        ("F0001", "payment", "received", "sms", "payment_received.en")]
    assert rows[0].ref.startswith("R/") and rows[0].fields == {
        "amount_due": "INR 1,500.00", "amount_paid": "INR 1,000.00", "bill_number": rows[0].ref,
        "name": "Asha Rao", "unit": "F0001"}
