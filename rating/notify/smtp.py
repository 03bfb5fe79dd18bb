"""Email over SMTP (the standard library's smtplib, on worker threads).

Each message is plain UTF-8 text with its subject, `Content-Language`, and a
`Message-ID` made of the outbox row's idempotency key, the same on every
attempt, so a relay that sends a row twice after a crash sends the same
Message-ID (which mail systems and clients use to drop duplicates).
Answers: accepted, sent (the Message-ID is the provider's reference); a
recipient refused with 5xx: bad address; 4xx at any stage, a dropped
connection or a timeout: retry; the message itself refused with 5xx:
refused. Connections are kept open, one per worker thread.

Bounces that arrive later by mail (delivery status notifications,
RFC 3464) are read by `permanent_failures` and recorded with
`Directory.bounced`, which marks the address invalid.
"""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.parser import BytesParser

from rating.notify.channel import Channel, Message
from rating.notify.outbox import Answer, Outcome


class SmtpChannel(Channel):
    def __init__(self, host: str, port: int, sender: str, *, name: str = "email", starttls: bool = False,
                 username: str = "", password: str = "", timeout_s: float = 10.0, workers: int = 4):
        self.name, self.host, self.port, self.sender = name, host, port, sender
        self.starttls, self.username, self.password, self.timeout_s = starttls, username, password, timeout_s
        self.domain = sender.rpartition("@")[2] or "localhost"
        self._local = threading.local()
        self._open: list[smtplib.SMTP] = []
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"smtp-{name}")

    def email(self, message: Message) -> EmailMessage:
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.idempotency_key}@{self.domain}>"
        mail.set_content(message.text)
        mail["Content-Language"] = message.language  # after: set_content replaces Content-* headers
        return mail

    async def send(self, message: Message) -> Answer:
        mail = self.email(message)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._send, mail, message.address)

    def _send(self, mail: EmailMessage, to: str) -> Answer:
        reference = str(mail["Message-ID"])
        for fresh in (False, True):  # a kept connection the server dropped: once more, new
            try:
                self._connection(fresh).send_message(mail, self.sender, [to])
                return Answer(Outcome.SENT, reference, "250 accepted")
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients[to]
                return _answer(code, text, Outcome.BAD_ADDRESS)
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                return _answer(exc.smtp_code, exc.smtp_error, Outcome.REFUSED)
            except smtplib.SMTPServerDisconnected as exc:
                self._drop()
                if fresh:
                    return Answer(Outcome.RETRY, "", f"disconnected: {exc}")
            except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, a bad greeting
                self._drop()
                return Answer(Outcome.RETRY, "", f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")

    def _connection(self, fresh: bool) -> smtplib.SMTP:
        con = getattr(self._local, "con", None)
        if con is None or fresh:
            con = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            if self.starttls:
                con.starttls()
            if self.username:
                con.login(self.username, self.password)
            self._local.con = con
            self._open.append(con)
        return con

    def _drop(self) -> None:
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None:
            try:
                con.close()
            except OSError:
                pass

    async def close(self) -> None:
        def quit_all() -> None:
            for con in self._open:
                try:
                    con.quit()
                except (OSError, smtplib.SMTPException):
                    con.close()
        await asyncio.get_running_loop().run_in_executor(None, quit_all)
        self._threads.shutdown(wait=True)


def _answer(code: int, text: bytes | str, permanent: Outcome) -> Answer:
    detail = f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
    return Answer(permanent if 500 <= code < 600 else Outcome.RETRY, "", detail)


def permanent_failures(raw: bytes) -> list[tuple[str, str]]:
    """(address, status) of each recipient a delivery status notification
    reports as failed for good (Action: failed, Status 5.x.x)."""
    report = BytesParser(policy=email.policy.default).parsebytes(raw)
    if report.get_content_type() != "multipart/report":
        return []
    found = []
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for fields in part.get_payload():  # the per-message block, then one per recipient
            if isinstance(fields, str):
                continue
            recipient = str(fields.get("Final-Recipient", ""))
            status = str(fields.get("Status", ""))
            if str(fields.get("Action", "")).lower() == "failed" and status.startswith("5"):
                found.append((recipient.partition(";")[2].strip(), status))
    return found
