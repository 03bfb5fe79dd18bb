"""`rating reminders list|cancel|resend|staff` (and `plan` through a server):
staff's hand on the outbox, on the dues ledger directly or, with `--server`
(or RATING_SERVER), through the running server's NotifyService, printing
the same lines either way (rating.notify.control says what each does)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid

from rating.cli.commands import EXIT_OK
from rating.cli.prepaid import _client, _client_failure
from rating.errors import InputError

LIST_ROWS_MAX = 100_000


def row_line(r) -> str:
    """One outbox row (a notify Row or the wire's Notification), as both paths print it."""
    identifier = getattr(r, "outbox_id", None) or getattr(r, "id", 0)
    answer = f"  ({r.answer})" if r.answer else ""
    return (f"#{identifier}  {r.state:<9}  {r.account_id}  {r.step}  {r.channel}  {r.address}  "
            f"{r.template}{answer}\n")


def task_line(task: tuple) -> str:
    identifier, account, channel, address, reason, at_us, resolved_us = task
    at = dt.datetime.fromtimestamp(at_us / 1e6, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    state = "resolved" if resolved_us else "open"
    return f"#{identifier}  {state:<8}  {at}  {account}  {channel}  {address}  {reason}\n"


def _one_id(args: argparse.Namespace) -> int:
    if len(args.subject) != 1 or not args.subject[0].lstrip("#").isdigit():
        raise InputError(f"reminders {args.verb} takes a notification id (#12 or 12), got {args.subject}",
                         where=args.verb)
    return int(args.subject[0].lstrip("#"))


async def local(args: argparse.Namespace, site, ledger) -> int:
    """The verb on the dues ledger."""
    from rating.notify import control

    outbox, directory, _ = await site.open(ledger)
    if args.verb == "list":
        account = args.subject[0] if args.subject else ""
        rows = await outbox.rows(site.site_id, account_id=account, state=args.state or "",
                                 limit=LIST_ROWS_MAX)
        sys.stdout.write("".join(map(row_line, rows)))
    elif args.verb == "cancel":
        row = await control.cancel(outbox, site.site_id, _one_id(args), actor=args.actor)
        sys.stdout.write(row_line(row))
    elif args.verb == "resend":
        row = await control.resend(outbox, directory, site.rules, site.site_id, _one_id(args),
                                   resend_key=args.key or uuid.uuid4().hex, actor=args.actor)
        sys.stdout.write(row_line(row))
    else:
        tasks = await control.staff_tasks(outbox, site.site_id, open_only=not args.all)
        sys.stdout.write("".join(map(task_line, tasks)))
    return EXIT_OK


def remote(args: argparse.Namespace) -> int:
    """The verb through the server's NotifyService."""
    from rating.client.calls import ClientError
    from rating.client.notify import NotifyClient

    with _client(args, NotifyClient) as client:
        try:
            if args.verb == "list":
                account = args.subject[0] if args.subject else ""
                rows = client.notifications(account_id=account, state=args.state or "")
                sys.stdout.write("".join(map(row_line, rows)))
            elif args.verb == "plan":
                preview = client.preview(on=args.on.isoformat() if args.on else "", shown_max=args.shown)
                for n in preview.notifications:
                    sys.stdout.write(row_line(n) + f"    Subject: {n.subject}\n" * bool(n.subject)
                                     + "".join(f"    {line}\n" for line in n.text.splitlines()))
                per = ", ".join(f"{c} {k}" for c, k in sorted(preview.per_channel.items()))
                sys.stdout.write(f"{preview.total} notices ({per}); nothing written or sent\n")
            elif args.verb == "cancel":
                sys.stdout.write(row_line(client.cancel(_one_id(args))))
            elif args.verb == "resend":
                sys.stdout.write(row_line(client.resend(_one_id(args), resend_key=args.key or "")))
            else:
                tasks = client.staff_tasks(include_resolved=args.all)
                sys.stdout.write("".join(task_line((t.id, t.account_id, t.channel, t.address, t.reason,
                                                    t.at_us, t.resolved_us)) for t in tasks))
        except ClientError as exc:
            return _client_failure(exc)
    return EXIT_OK
