"""The channels against real local servers: email through an aiosmtpd SMTP
server (accepted, a dead mailbox, a busy one, a server that is down, a
bounce that comes back later), the webhook's template id and variables; and
contacts checked on entry."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from rating.errors import InputError
from rating.model.site import Site
from rating.notify.channel import Message
from rating.notify.directory import Contact, check_address
from rating.notify.gate import renderer
from rating.notify.outbox import Notice, Outcome
from rating.notify.relay import Relay, RelayPolicy
from rating.notify.rules import load_reminders
from rating.notify.smtp import SmtpChannel, permanent_failures
from rating.notify.webhook import WebhookChannel
from tests.billing_drafts import SITE
from tests.notify_ledgers import opened
from tests.notify_servers import HttpSink
from tests.servers import free_port

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger
DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"
FIELDS_HI = {"amount_due": "INR 2,500.00", "due_date": "2025-06-15", "name": "रवि",
             "payment_link": "https://pay.example.org/x", "unit": "F0002"}


class Mailboxes:
    """An SMTP server's handler: nobody@ does not exist (550), busy@ is full for now (451)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "451 4.2.2 mailbox full, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp_server():
    handler = Mailboxes()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def rules(tmp_path):
    shutil.copytree(DEMO, tmp_path / "site")
    return load_reminders(tmp_path / "site" / "reminders.toml", Site(name="Green Meadows"))


def notice(address: str, template: str = "reminder.hi", fields=FIELDS_HI, channel: str = "email") -> Notice:
    return Notice(SITE, "F0002", "due_step", f"B-{address}", "d-7", channel, address, template, fields, 0)


def send_all(make_ledger, rules, channel, addresses, *, before=None):
    async def go():
        async with opened(make_ledger) as (_, outbox, directory):
            for address in addresses:
                await directory.set_contact(SITE, Contact("F0002", "email", address), channel_kind="smtp",
                                            actor="t")
            await outbox.enqueue([notice(a) for a in addresses], 0)
            if before is not None:
                await before(directory)
            relay = Relay(outbox, {"email": channel}, render=renderer(rules),
                          policy=RelayPolicy(concurrency=2), site_id=SITE)
            report = await relay.run_once()
            await channel.close()
            return report, await outbox.rows(SITE), await directory.contacts(SITE)
    return asyncio.run(go())


def test_an_email_is_delivered_in_utf8_with_its_subject_and_a_message_id_of_its_key(make_ledger, rules,
                                                                                      smtp_server):
    controller, mailboxes = smtp_server
    channel = SmtpChannel("127.0.0.1", controller.port, "accounts@green-meadows.example")
    report, rows, _ = send_all(make_ledger, rules, channel, ["ravi@example.org"])
    assert report.outcomes["sent"] == 1
    [mail] = mailboxes.messages
    assert mail["Subject"] == "F0002: 2025-06-15 तक INR 2,500.00 देय"
    assert mail["Content-Language"] == "hi" and mail["To"] == "ravi@example.org"
    assert "प्रिय रवि" in mail.get_content()
    assert rows[0].provider_ref == mail["Message-ID"] == f"<{_key(rows[0].key)}@green-meadows.example>"


def _key(note_key: str) -> str:
    import hashlib

    return hashlib.sha256(note_key.encode()).hexdigest()[:32]


def test_a_dead_mailbox_marks_the_address_invalid_and_a_full_one_is_retried(make_ledger, rules, smtp_server):
    controller, mailboxes = smtp_server
    channel = SmtpChannel("127.0.0.1", controller.port, "accounts@green-meadows.example")
    report, rows, contacts = send_all(make_ledger, rules, channel, ["nobody@example.org", "busy@example.org"])
    assert report.outcomes["bad_address"] == 1 and report.outcomes["retry"] == 1
    states = {r.address: (r.state, r.answer[:3]) for r in rows}
    assert states == {"nobody@example.org": ("failed", "550"), "busy@example.org": ("queued", "451")}
    assert contacts["F0002"]["email"].address == "busy@example.org"  # the last one set
    assert mailboxes.messages == []


def test_a_server_that_is_down_is_a_retry(make_ledger, rules):
    channel = SmtpChannel("127.0.0.1", free_port(), "accounts@green-meadows.example", timeout_s=1)
    report, rows, _ = send_all(make_ledger, rules, channel, ["ravi@example.org"])
    assert report.outcomes["retry"] == 1 and rows[0].state == "queued" and rows[0].attempts == 1


DSN = b"""From: MAILER-DAEMON@mx.example.org
To: accounts@green-meadows.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; ravi@example.org
Action: failed
Status: 5.1.1

Final-Recipient: rfc822; asha@example.org
Action: delayed
Status: 4.4.1
--B--
"""


def test_a_bounce_that_comes_back_later_marks_the_address_and_cancels_its_queued_notices(make_ledger, rules,
                                                                                           smtp_server):
    assert permanent_failures(DSN) == [("ravi@example.org", "5.1.1")]
    assert permanent_failures(b"Subject: hello\n\nnot a report\n") == []
    controller, mailboxes = smtp_server
    channel = SmtpChannel("127.0.0.1", controller.port, "accounts@green-meadows.example")

    async def bounce(directory):
        for address, status in permanent_failures(DSN):
            assert await directory.bounced(SITE, "email", address, status, actor="mailbox") == 1

    report, rows, contacts = send_all(make_ledger, rules, channel, ["ravi@example.org"], before=bounce)
    assert report.outcomes["sent"] == 0 and rows[0].state == "cancelled"
    assert contacts["F0002"]["email"].invalid == "bounced 5.1.1" and mailboxes.messages == []


def test_the_webhook_sends_the_registered_template_id_and_its_variables(rules):
    sink = HttpSink().start()
    ids = rules.channels["sms"]["template_ids"]
    channel = WebhookChannel(sink.url, template_ids=ids)

    async def go():
        message = Message("+919812345678", "reminder", FIELDS_HI, "k" * 32, language="hi")
        answer = await channel.send(message)
        await channel.close()
        return answer

    try:
        answer = asyncio.run(go())
    finally:
        sink.close()
    assert answer.outcome is Outcome.SENT and answer.provider_ref == "msg-1"
    assert sink.requests == [{"key": "k" * 32, "to": "+919812345678", "template_id": "1107160000000000002",
                              "template": "reminder", "language": "hi", "variables": FIELDS_HI}]


@pytest.mark.parametrize(("kind", "given", "stored"), [
    ("webhook", "098123 45678", "+919812345678"),
    ("webhook", "+86 138 0013 8000", "+8613800138000"),
    ("smtp", " ravi@example.org ", "ravi@example.org"),
])
def test_contacts_are_stored_normalised(kind, given, stored):
    assert check_address(kind, given) == stored


@pytest.mark.parametrize(("kind", "given"), [
    ("webhook", "12345"), ("webhook", "+91 00000 00000"), ("webhook", "call me"), ("webhook", ""),
    ("webhook", "+91" + "9" * 300), ("smtp", "ravi"), ("smtp", "ravi@"), ("smtp", "a b@example.org"),
    ("smtp", "ravi@example"), ("smtp", "x" * 65 + "@example.org"), ("smtp", "ravi@-example.org"),
    ("smtp", None),
])
def test_a_bad_contact_is_refused_naming_the_field_and_nothing_is_stored(make_ledger, kind, given):
    with pytest.raises(InputError) as caught:
        check_address(kind, given)
    assert caught.value.where == f"{kind} address"

    async def go():
        async with opened(make_ledger) as (_, _, directory):
            with pytest.raises(InputError):
                await directory.set_contact(SITE, Contact("F0001", "x", given), channel_kind=kind, actor="t")
            return await directory.contacts(SITE)
    assert asyncio.run(go()) == {}
