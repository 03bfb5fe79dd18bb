"""`rating reminders`: plan, send and look after a site's reminders
(rating.notify, docs/reminders.md), on the dues ledger's database."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from rating.cli.billing import _ledger_arguments, _with_ledger
from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError
from rating.notify.site import ReminderSite

DESCRIPTION = """
    A site's reminders by its reminders.toml (beside the site file): the
    cadence of steps around each bill's due date, the escalation ladder,
    tone by owner tags, quiet hours, the daily cap, consent, the channels.

      plan      what would go out today (or --on DAY): when, to whom, by which
                channel, with which text; nothing is written or sent
      send      write today's notices into the outbox (once per bill, step and
                channel however often it runs) and run the relay once
      contact   set a resident's address for a channel (checked: E.164, email)
      consent   record a resident's answer for a channel: in | out
      tag       add (or --remove) a staff tag on a resident
      log       a resident's notices and every attempt, as JSON (an export)
      bounce    read bounce reports (delivery status mails) and mark addresses
      list      the outbox's rows (of an account, --state), oldest first
      cancel    cancel a queued notice by its id (one being sent cannot be recalled)
      resend    send a notice again: a new row with its own key (--key makes a retry safe)
      staff     the staff queue: contacts a provider refused (--all: resolved ones too)

    list, cancel, resend, staff and plan go through a running server with
    --server HOST:PORT (or RATING_SERVER), which holds the ledger.

    examples:
      rating reminders plan --site site.toml --on 2025-06-08
      rating reminders send --site site.toml
      rating reminders contact A-101 --channel sms --address "098123 45678" --name "Asha Rao" --site site.toml
      rating reminders consent A-101 --channel sms in --site site.toml
      rating reminders log A-101 --site site.toml
      rating reminders list A-101 --server 127.0.0.1:50051 --token-file office.token
      rating reminders resend 42 --key resend-42-asha --site site.toml

    exit codes: 0 done; 2 bad input (a bad reminders.toml or template names
    file and line), nothing written; 3 the ledger cannot be reached.
"""
VERBS = ("plan", "send", "contact", "consent", "tag", "log", "bounce", "list", "cancel", "resend", "staff")
REMOTE_VERBS = ("plan", "list", "cancel", "resend", "staff")


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verb", choices=VERBS)
    parser.add_argument("subject", nargs="*", help="contact, consent, tag, log: the account; consent: "
                        "in | out after it; tag: the tag after it; bounce: the report files")
    _ledger_arguments(parser)
    parser.add_argument("--on", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="plan: the day to plan (default today, in the site's zone)")
    parser.add_argument("--shown", type=int, default=20, metavar="N", help="plan: show at most N notices")
    parser.add_argument("--channel", help="contact, consent: the channel (a name in [channels])")
    parser.add_argument("--address", help="contact: the email address or phone number")
    parser.add_argument("--name", default="", help="contact: the resident's name")
    parser.add_argument("--language", default="", help="contact: en, hi, zh, ... (default the site's)")
    parser.add_argument("--time-zone", default="", help="contact: the resident's zone (default the site's)")
    parser.add_argument("--region", default="IN", help="contact: the country of a number without +code")
    parser.add_argument("--remove", action="store_true", help="tag: remove it")
    parser.add_argument("--state", choices=("queued", "sending", "sent", "failed", "cancelled"),
                        help="list: rows in this state only")
    parser.add_argument("--all", action="store_true", help="staff: resolved tasks too")
    parser.add_argument("--key", default="", help="resend: the resend's key (the same key again returns "
                        "the row it made; default a new one)")


@subcommand("reminders", help="plan and send reminders; residents' contacts, consent and tags",
            description=DESCRIPTION, arguments=_arguments)
def reminders_command(args: argparse.Namespace) -> int:
    from rating.cli import reminders_control

    if getattr(args, "server", None):
        if args.verb not in REMOTE_VERBS:
            raise InputError(f"reminders {args.verb} runs on the ledger, not through --server; "
                             f"through a server: {', '.join(REMOTE_VERBS)}", where="--server")
        return reminders_control.remote(args)
    site = ReminderSite(args.site)
    verbs = {"plan": _plan, "send": _send, "contact": _contact, "consent": _consent, "tag": _tag, "log": _log,
             "bounce": _bounce,
             **dict.fromkeys(("list", "cancel", "resend", "staff"), reminders_control.local)}
    return _with_ledger(args, lambda ledger: verbs[args.verb](args, site, ledger))


async def attach_issue_notices(site_file: Path, ledger) -> None:
    """`rating bills issue`: when the site has a reminders.toml naming an issue
    (or payment) template, each bill's "issued" notice is written in the issue's transaction."""
    site = ReminderSite.of(site_file)
    if site is not None:
        await site.attach(ledger)


def _subject(args: argparse.Namespace, count: int, what: str) -> list[str]:
    if len(args.subject) != count:
        raise InputError(f"reminders {args.verb} takes {what}", where=args.verb)
    return args.subject


async def _plan(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    from rating.notify.planner import plan
    from rating.notify.text import plan_text

    _subject(args, 0, "no account")
    outbox, directory, planner = await site.open(ledger)
    day = args.on or site.today()
    notices = await plan(ledger, directory, planner, today=day, now_us=0)
    sys.stdout.write(plan_text(notices, site.rules, day, shown_max=args.shown))
    return EXIT_OK


async def _send(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    from rating.notify.planner import plan
    from rating.notify.site import close

    _subject(args, 0, "no account")
    outbox, directory, planner = await site.open(ledger)
    now_us = time.time_ns() // 1000
    written = await outbox.enqueue(await plan(ledger, directory, planner, today=site.today(), now_us=now_us),
                                   now_us)
    relay = site.relay(outbox)
    try:
        report = await relay.run_once()
    finally:
        await close(relay)
    sys.stdout.write(f"{written} new notices queued; relay: {report}\n")
    return EXIT_OK


async def _contact(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    from rating.notify.directory import Contact

    account = site.account(_subject(args, 1, "the account")[0])
    if not args.address:
        raise InputError("reminders contact needs --address", where="--address")
    _, directory, _ = await site.open(ledger)
    contact = Contact(account, str(args.channel), args.address, args.name,
                      args.language or site.rules.language, args.time_zone)
    stored = await directory.set_contact(site.site_id, contact, channel_kind=site.kind(args.channel),
                                         region=args.region, actor=args.actor)
    sys.stdout.write(f"{account} {stored.channel}: {stored.address}\n")
    return EXIT_OK


async def _consent(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    from rating.notify.directory import Consent

    account, answer = _subject(args, 2, "the account and in | out")
    site.account(account)
    if answer not in ("in", "out"):
        raise InputError(f"consent is in or out, got {answer!r}", where=answer)
    site.kind(args.channel)
    _, directory, _ = await site.open(ledger)
    cancelled = await directory.set_consent(site.site_id, account, args.channel, Consent(answer),
                                            source="staff", actor=args.actor)
    sys.stdout.write(f"{account} {args.channel}: opted {answer}" + (f", {cancelled} queued notices cancelled"
                                                                   if cancelled else "") + "\n")
    return EXIT_OK


async def _tag(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    account, tag = _subject(args, 2, "the account and the tag")
    site.account(account)
    _, directory, _ = await site.open(ledger)
    await directory.tag(site.site_id, account, tag, actor=args.actor, remove=args.remove)
    sys.stdout.write(f"{account}: {'removed' if args.remove else 'tagged'} {tag}\n")
    return EXIT_OK


async def _log(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    [account] = _subject(args, 1, "the account")
    outbox, _, _ = await site.open(ledger)
    exported = await outbox.export(site.site_id, account)
    sys.stdout.write(json.dumps(exported, ensure_ascii=False, indent=1) + "\n")
    return EXIT_OK


async def _bounce(args: argparse.Namespace, site: ReminderSite, ledger) -> int:
    from rating.notify.smtp import permanent_failures

    if not args.subject:
        raise InputError("reminders bounce takes the report files", where="bounce")
    _, directory, _ = await site.open(ledger)
    emails = [name for name, settings in site.rules.channels.items() if settings["kind"] == "smtp"]
    for path in map(Path, args.subject):
        for address, status in permanent_failures(path.read_bytes()):
            for channel in emails:
                cancelled = await directory.bounced(site.site_id, channel, address, status, actor=args.actor)
                sys.stdout.write(f"{address} ({channel}): invalid, bounced {status}; {cancelled} cancelled\n")
    return EXIT_OK
