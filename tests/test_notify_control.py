"""Staff's hand on the outbox through a real server's NotifyService (and the
CLI with --server): list (a resident their own only), preview (writes
nothing), cancel (a queued row only), resend (a new row with its own key,
idempotent by its resend key, delivered to a real HTTP sink), and a provider's
4xx for a bad number marking the contact invalid and putting it in the staff
queue; on the ledger directly, a new address settles the staff's task."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from rating.cli.commands import main
from rating.client.billing import BillingClient
from rating.client.notify import NotifyClient
from rating.notify import control
from rating.notify.directory import Consent, Contact
from tests.billing_server import SITE_NAME, failure, serving, settings
from tests.test_serve_reminders import CYCLE, cli, sink, society, wait_for  # noqa: F401 - sink: a fixture

STAFF, RESIDENT, OTHER = "k7-office", "k7-a0101", "k7-a0102"
TOKENS = (f"{STAFF} role=staff site='{SITE_NAME}' name=office\n"
          f"{RESIDENT} role=resident site='{SITE_NAME}' unit=A-0101\n"
          f"{OTHER} role=resident site='{SITE_NAME}' unit=A-0102\n")


@pytest.fixture
def served(tmp_path, sink):  # noqa: F811
    site, data_dir = society(tmp_path, sink), tmp_path / "data"
    data_dir.mkdir()
    for account, number in (("A-0101", "98123 45678"), ("A-0102", "98123 45679")):
        assert cli(site, data_dir, "reminders", "contact", account, "--channel", "sms",
                   "--address", number) == 0
        assert cli(site, data_dir, "reminders", "consent", account, "in", "--channel", "sms") == 0
    (tmp_path / "tokens").write_text(TOKENS, encoding="utf-8")
    with serving(settings(site, data_dir, token_file=str(tmp_path / "tokens"),
                          reminders_interval_s=0.1)) as running:
        with BillingClient(running.target, site_id=SITE_NAME, token=STAFF) as client:
            client.issue(CYCLE, actor="treasurer")
        wait_for(lambda: len(sink.requests) == 2)  # each flat's "issued" SMS
        yield running


def rows_of(served, account=""):
    with NotifyClient(served.target, token=STAFF) as client:
        return list(client.notifications(account_id=account))


def test_staff_list_everything_and_a_resident_only_their_own(served):
    assert {(n.account_id, n.step, n.state) for n in rows_of(served)} >= {
        ("A-0101", "issued", "sent"), ("A-0102", "issued", "sent")}
    with NotifyClient(served.target, token=RESIDENT) as client:
        mine = list(client.notifications(account_id="A-0101"))
        assert {n.account_id for n in mine} == {"A-0101"}
        assert json.loads(mine[0].fields_json)["unit"] == "A-0101"
        assert [n.id for n in client.notifications()] == [n.id for n in mine]  # none named: their own
        error = failure(lambda: list(client.notifications(account_id="A-0102")))
        assert error.code == grpc.StatusCode.PERMISSION_DENIED
        assert failure(lambda: client.cancel(mine[0].id)).code == grpc.StatusCode.PERMISSION_DENIED
    with NotifyClient(served.target, token=STAFF) as client:
        bad_state = failure(lambda: list(client.notifications(state="lost")))
        assert bad_state.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure(lambda: client.cancel(10**9)).code == grpc.StatusCode.NOT_FOUND


def test_preview_renders_the_day_and_writes_nothing(served):
    before = served.counts()
    with NotifyClient(served.target, token=STAFF) as client:
        preview = client.preview(on="2025-06-09", shown_max=1)
        assert failure(lambda: client.preview(on="09/06/2025")).code == grpc.StatusCode.INVALID_ARGUMENT
    assert preview.total >= 2 and len(preview.notifications) == 1 and preview.per_channel["sms"] >= 2
    shown = preview.notifications[0]
    assert shown.state == "planned" and shown.step == "d-7" and "A-01" in shown.text
    assert served.counts() == before


def test_a_sent_notice_is_not_cancelled_and_a_resend_is_a_new_row_sent_once(served, sink):  # noqa: F811
    first = next(n for n in rows_of(served, "A-0101") if n.step == "issued")
    with NotifyClient(served.target, token=STAFF) as client:
        refused = failure(lambda: client.cancel(first.id))
        assert (refused.code, refused.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_QUEUED")
        again = client.resend(first.id, resend_key="asha-asked")
        same = client.resend(first.id, resend_key="asha-asked")  # a retried call
        bad_key = failure(lambda: client.resend(first.id, resend_key="a|b"))
        assert bad_key.code == grpc.StatusCode.INVALID_ARGUMENT
    assert again.id == same.id != first.id and again.key == f"{first.key}|resend:asha-asked"
    assert again.answer == f"resend of #{first.id} by office"
    wait_for(lambda: len(sink.requests) == 3)
    assert sink.duplicates == 0 and sink.requests[-1]["template"] == "bill_issued"
    assert next(n for n in rows_of(served, "A-0101") if n.id == again.id).state == "sent"


def test_a_4xx_for_a_bad_number_marks_the_contact_invalid_and_tells_staff(served, sink, capsys,  # noqa: F811
                                                                         monkeypatch):
    first = next(n for n in rows_of(served, "A-0102") if n.step == "issued")
    sink.statuses.append(400)  # the gateway: no such number
    with NotifyClient(served.target, token=STAFF) as client:
        bad = client.resend(first.id, resend_key="try-again")
        wait_for(lambda: next(n for n in rows_of(served, "A-0102") if n.id == bad.id).state == "failed")
        [task] = client.staff_tasks()
        refused = failure(lambda: client.resend(first.id, resend_key="once-more"))  # the contact is invalid
    assert (task.account_id, task.channel, task.address, task.resolved_us) == (
        "A-0102", "sms", "+919812345679", 0)
    assert "400" in task.reason and refused.reason == "NOT_QUEUED"
    monkeypatch.setenv("RATING_TOKEN", STAFF)
    assert main(["reminders", "staff", "--server", served.target]) == 0
    assert "A-0102  sms  +919812345679" in capsys.readouterr().out


def test_the_cli_lists_and_cancels_through_the_server(served, capsys, monkeypatch):
    monkeypatch.setenv("RATING_TOKEN", STAFF)
    assert main(["reminders", "list", "A-0101", "--server", served.target]) == 0
    out = capsys.readouterr().out
    assert "A-0101  issued  sms  +919812345678  bill_issued.en" in out and "A-0102" not in out
    assert main(["reminders", "cancel", "#1", "--server", served.target]) == 2
    assert "NOT_QUEUED" in capsys.readouterr().err
    assert main(["reminders", "contact", "A-0101", "--server", served.target]) == 2  # a ledger verb


def test_on_the_ledger_cancel_is_idempotent_and_a_new_address_settles_the_task(tmp_path):
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.notify.directory import Directory
    from rating.notify.outbox import Notice, Outbox, invalidate
    from rating.notify.tables import now_us

    async def go():
        ledger = SqliteDuesLedger(tmp_path / "ledger.db")
        await ledger.open()
        outbox = Outbox(ledger)
        await outbox.open()
        directory = Directory(outbox)
        await directory.set_contact("s", Contact("A", "sms", "98123 45678"), channel_kind="webhook",
                                    actor="desk")
        await outbox.enqueue([Notice("s", "A", "due_step", "B1", "d-7", "sms", "+919812345678", "reminder.en",
                                     {}, 0)], 0)
        [row] = await outbox.rows("s")
        cancelled = await control.cancel(outbox, "s", row.outbox_id, actor="desk")
        twice = await control.cancel(outbox, "s", row.outbox_id, actor="desk")
        async with outbox.tables.writing() as tx:
            await invalidate(tx, "s", "sms", "+919812345678", "400 no such number", now_us())
        open_tasks = await control.staff_tasks(outbox, "s")
        await directory.set_contact("s", Contact("A", "sms", "98123 45670"), channel_kind="webhook",
                                    actor="desk")
        await directory.set_consent("s", "A", "sms", Consent.OUT, source="call", actor="desk")
        after = (await control.staff_tasks(outbox, "s"),
                 await control.staff_tasks(outbox, "s", open_only=False))
        log = await outbox.log("s", "A")
        await ledger.close()
        return cancelled, twice, open_tasks, after, log

    cancelled, twice, open_tasks, (still_open, every), log = asyncio.run(go())
    assert cancelled.state == twice.state == "cancelled" and cancelled.answer == "cancelled by desk"
    assert [t[1:5] for t in open_tasks] == [("A", "sms", "+919812345678", "400 no such number")]
    assert still_open == [] and every[0][6] > 0
    assert [entry[3] for entry in log] == ["cancelled"]  # the second cancel logged nothing
