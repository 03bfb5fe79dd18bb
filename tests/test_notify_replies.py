"""Replies from residents (STOP, START) over real HTTP, through the server's
listener (rating.web.app), on both dues ledgers: an opt-out cancels the
channel's queued notices at once; bad tokens, bodies and numbers change nothing."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rating.notify.directory import Consent, Contact, Directory
from rating.notify.outbox import Notice, Outbox
from rating.notify.replies import Replies, keyword
from rating.web.app import HttpListener, build_app
from tests.billing_drafts import SITE

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
TOKEN = "inbound-secret"


@pytest.mark.parametrize(("text", "wanted"), [
    ("STOP", Consent.OUT), (" stop please", Consent.OUT), ("Stop.", Consent.OUT), ("ＳＴＯＰ", Consent.OUT),
    ("STOP ALL", Consent.OUT), ("बंद", Consent.OUT), ("退订", Consent.OUT), ("START", Consent.IN),
    ("stopping by later", None), ("thanks", None), ("", None),
])
def test_reply_keywords(text, wanted):
    assert keyword(text) is wanted


def replies(make_ledger, calls):
    """Two flats share one number; each has a queued SMS; `calls` are (headers, json or bytes)."""
    async def go():
        ledger = make_ledger()
        await ledger.open()
        outbox = Outbox(ledger)
        await outbox.open()
        directory = Directory(outbox)
        for account in ("F0001", "F0002"):
            await directory.set_contact(SITE, Contact(account, "sms", "+919812345678"),
                                        channel_kind="webhook", actor="t")
            await directory.set_consent(SITE, account, "sms", Consent.IN, source="form", actor="t")
        await outbox.enqueue([Notice(SITE, a, "due_step", f"B-{a}", "d-7", "sms", "+919812345678",
                                     "reminder.en", {}, 0) for a in ("F0001", "F0002")], 0)
        app = build_app(Replies(directory, SITE, tokens={"sms": TOKEN}, body_bytes_max=1000).routes())
        listener = await HttpListener.start(app, host="127.0.0.1", port=0, grace_s=1)
        answers = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{listener.port}") as client:
                for path, headers, body in calls:
                    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
                    answer = await client.post(path, headers=headers, **kwargs)
                    answers.append((answer.status_code, answer.json()))
        finally:
            await listener.stop()
        states = await outbox.rows(SITE)
        consents = await directory.consents(SITE)
        await ledger.close()
        return answers, [r.state for r in states], consents
    return asyncio.run(go())


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_stop_opts_out_every_account_of_the_number_and_cancels_their_queued_sms(make_ledger):
    answers, states, consents = replies(make_ledger, [
        ("/replies/sms", AUTH, {"from": "098123 45678", "text": "hello"}),
        ("/replies/sms", AUTH, {"from": "+91 98123 45678", "text": "STOP"}),
        ("/replies/sms", AUTH, {"from": "+919812345670", "text": "STOP"}),  # nobody's number
    ])
    assert answers == [(200, {"action": "none"}), (200, {"action": "opt_out", "cancelled": 2}),
                       (200, {"action": "opt_out", "cancelled": 0})]
    assert states == ["cancelled", "cancelled"]
    assert consents == {("F0001", "sms"): Consent.OUT, ("F0002", "sms"): Consent.OUT}


def test_a_bad_call_is_refused_and_changes_nothing(make_ledger):
    answers, states, consents = replies(make_ledger, [
        ("/replies/sms", {}, {"from": "+919812345678", "text": "STOP"}),
        ("/replies/sms", {"Authorization": "Bearer wrong"}, {"from": "+919812345678", "text": "STOP"}),
        ("/replies/email", AUTH, {"from": "+919812345678", "text": "STOP"}),
        ("/replies/sms", AUTH, b"{not json"),
        ("/replies/sms", AUTH, {"from": "12345", "text": "STOP"}),
        ("/replies/sms", AUTH, {"from": "+919812345678"}),
        ("/replies/sms", AUTH, {"from": "+919812345678", "text": ["STOP"]}),
        ("/replies/sms", AUTH, {"from": "+919812345678", "text": "STOP " + "x" * 2000}),
    ])
    assert [status for status, _ in answers] == [401, 401, 404, 400, 400, 400, 400, 413]
    assert all("error" in body for _, body in answers)
    assert states == ["queued", "queued"]
    assert set(consents.values()) == {Consent.IN}
