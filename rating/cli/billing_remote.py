"""The billing verbs through a running server (rating.cli.billing).

A running server holds its ledger exclusively, so with `--server HOST:PORT`
(or RATING_SERVER) `rating bills run|issue|show` and `rating dues import`
make their calls to the server's BillingService and print what the local
verbs print; without one they open the ledger directly, and refuse to when a
server holds that SQLite file (its lock says which process) rather than
write beside it. The server bills its own site: `--site`, when given, must
be the same site (its name is sent with every call).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from pathlib import Path

from rating.cli.commands import EXIT_OK
from rating.cli.prepaid import EXIT_UNAVAILABLE, _client, _client_arguments, _client_failure, _outcome_unknown
from rating.errors import InputError

DRAFTS_SHOWN_MAX = 1000  # what the server returns in full at most (the totals cover every bill)


def client_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser, ledger_without=True)


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "server", None))


def held_by(ledger: Path) -> str:
    """Who holds an SQLite ledger file (a running server's lock), or "" when nobody does."""
    lock = ledger.with_name(ledger.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return ""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # only probes: let go at once
        fcntl.flock(fd, fcntl.LOCK_UN)
        return ""
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)


def refuse_held(ledger: Path) -> int | None:
    """EXIT_UNAVAILABLE, said on stderr, when a server holds the ledger; None when it is free."""
    holder = held_by(ledger)
    if not holder:
        return None
    sys.stderr.write(f"rating: error: {ledger} is held by a running server ({holder}): go through it with "
                     "--server HOST:PORT (or RATING_SERVER)\n")
    return EXIT_UNAVAILABLE


def _site_id(args: argparse.Namespace) -> str:
    """The site --site names (its [site] table alone: the server has the rest)."""
    if not args.site:
        return ""
    from rating.model.site import load_site_file

    return load_site_file(args.site)[0].name


def _calling(args: argparse.Namespace, action, kind=None) -> int:
    """Run action(client) (it prints) with a client of `kind` (default BillingClient);
    a failed call is said on stderr with its exit code."""
    from rating.client.billing import BillingClient
    from rating.client.calls import ClientError, OutcomeUnknown

    site_id, kind = _site_id(args), kind or BillingClient
    with _client(args, lambda *a, **kw: kind(*a, site_id=site_id, **kw)) as client:
        try:
            return action(client)
        except OutcomeUnknown as exc:
            return _outcome_unknown(exc.message, "run the same command again: each write is keyed by what "
                                                 "it records (a cycle, a file's content, the entry's key)")
        except ClientError as exc:
            return _client_failure(exc)


def bills(args: argparse.Namespace) -> int:
    from rating.billing import bill_text
    from rating.client.billing import document_of, draft_of, issued_of

    def run(client) -> int:
        if args.verb == "show":
            return _show(args, client)
        readings = _readings(args.readings) if args.readings else None
        if args.verb == "issue":
            reply = client.issue(args.cycle, readings=readings, bill_date=args.bill_date, actor=args.actor)
            sys.stdout.write(bill_text.issued(issued_of(reply), reply.minor_unit_exponent))
            return EXIT_OK
        shown_max = max(min(args.accounts, DRAFTS_SHOWN_MAX), 0)
        reply = client.run(args.cycle, readings=readings, bill_date=args.bill_date, bills_max=shown_max or 1)
        shown = [draft_of(d, reply.site_id) for d in reply.drafts[:shown_max]]
        sys.stdout.write(bill_text.draft_summary(shown, reply.minor_unit_exponent, bills=reply.bills,
                                                 charges_minor=reply.charges_minor,
                                                 due_minor=reply.total_due_minor, anomalies=reply.anomalies))
        return EXIT_OK

    def _show(args, client) -> int:
        if args.number:
            bill = client.bill(args.number)
            text = bill_text.document(document_of(bill), bill.minor_unit_exponent, list(bill.carried))
            sys.stdout.write(text)
            return EXIT_OK
        pages = list(client.bill_pages(cycle=args.cycle or "", account_id=args.account or "", page_size=1000))
        documents = [document_of(bill) for page in pages for bill in page.bills]
        sys.stdout.write(bill_text.listing(documents, pages[0].minor_unit_exponent))
        return EXIT_OK

    return _calling(args, run)


def dues(args: argparse.Namespace) -> int:
    from rating.billing.money import major

    def run(client) -> int:
        reply = client.import_dues(args.file, actor=args.actor)
        note = " (already imported: first result)" if reply.replayed else ""
        total = major(reply.amount_minor, reply.minor_unit_exponent)
        print(f"imported {reply.entries} dues of {args.file.name}, {total} in all [#{reply.sequence}]{note}")
        return EXIT_OK

    try:
        return _calling(args, run)
    except OSError as exc:
        raise InputError(f"cannot read dues file: {exc.strerror}", where=str(args.file)) from None


def documents(args: argparse.Namespace) -> int:
    """`bills pdf` through the server: each issued document rendered there, written here."""
    from rating.cli.billing_documents import check_documents

    check_documents(args)
    if args.draft or args.readings:
        raise InputError("the server renders issued bills with their lines: --draft and --readings (usage "
                         "detail) need the ledger itself (without --server)", where="--draft/--readings")
    formats = ("pdf", "html") if args.format == "both" else (args.format,)

    def run(client) -> int:
        numbers = [args.number] if args.number else [b.number for b in client.bills(cycle=args.cycle,
                                                                                   page_size=1000)]
        if not numbers:
            raise InputError(f"cycle {args.cycle} has no issued bills; issue it first", where="--cycle",
                             reason="NOT_FOUND")
        files = [client.render_bill(number, format=fmt) for number in numbers for fmt in formats]
        args.out.mkdir(parents=True, exist_ok=True)
        for rendered in files:
            (args.out / Path(rendered.file_name).name).write_bytes(rendered.content)
        sys.stdout.write(f"wrote {len(numbers)} documents ({len(files)} files) to {args.out}\n")
        return EXIT_OK

    return _calling(args, run)


def statement(args: argparse.Namespace) -> int:
    """`rating statement` through the server."""
    from rating.cli.billing_documents import put_statement, statement_format

    fmt = statement_format(args)

    def run(client) -> int:
        found = client.statement(args.account, args.first, args.last)
        rendered = client.render_statement(args.account, args.first, args.last, format=fmt)
        return put_statement(args, rendered.content, len(found.lines))

    return _calling(args, run)


def _readings(paths: list[Path]):
    """The readings files as one table (the server rates them as `rating rate` does)."""
    import pyarrow as pa

    from rating.readings.sources import iter_reading_batches

    tables = [pa.Table.from_batches(list(iter_reading_batches(path))) for path in paths]
    try:
        return pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"the readings files have different columns: {exc}; give one file",
                         where=str(paths[0])) from None
