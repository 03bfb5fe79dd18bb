"""`rating bills pdf` and `rating statement`: rendered documents written to files
(rating.cli.billing parses the arguments and opens the ledger)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rating.cli.commands import EXIT_OK
from rating.errors import InputError

SUFFIXES = {".pdf": "pdf", ".html": "html", ".htm": "html", ".csv": "csv", ".arrow": "arrow"}


def file_name(number: str, suffix: str) -> str:
    """A document number as a file name: B/25-26/000001 -> B-25-26-000001.pdf."""
    return number.replace("/", "-") + suffix


def check_documents(args: argparse.Namespace) -> None:
    """The arguments of `bills pdf`, checked before anything is read (here or through a server)."""
    if bool(args.number) == bool(args.cycle):
        raise InputError("bills pdf takes a NUMBER or --cycle YYYY-MM", where="bills pdf")
    if args.out is None:
        raise InputError("bills pdf needs --out DIR", where="--out")
    if args.draft and not args.cycle:
        raise InputError("--draft goes with --cycle", where="--draft")


def write_documents(args: argparse.Namespace, site_file: Path, with_ledger: Callable) -> int:
    from rating.billing.inputs import load_site_billing, run_cycle

    check_documents(args)
    society = load_site_billing(site_file)
    cycle = run_cycle(society.site_id, args.cycle, society.billing, bill_date=args.bill_date) if args.cycle \
        else None
    detail = _detail(args, society, cycle)

    async def write(ledger) -> int:
        sources = await _sources(ledger, args, society, cycle, detail)
        written = _write_all(sources, society, args.out, args.format, detail)
        what = "drafts" if args.draft else "documents"
        sys.stdout.write(f"wrote {len(sources)} {what} ({written} files) to {args.out}\n")
        return EXIT_OK

    return with_ledger(args, write)


def _detail(args: argparse.Namespace, society, cycle) -> dict:
    """Each account's usage detail from --readings (none: the bills show their lines only)."""
    if not args.readings:
        return {}
    from rating.billing.render.usage_detail import usage_detail
    from rating.cli.commands import _rate

    if cycle is None:
        raise InputError("--readings goes with --cycle (the cycle they are the readings of)",
                         where="--readings")
    result = _rate(args.readings, society.config, "report")
    return usage_detail(result.charges, [str(p) for p in args.readings], society.config, cycle.period_start,
                        cycle.period_end)


async def _sources(ledger, args: argparse.Namespace, society, cycle, detail: dict) -> list:
    if args.number:
        document = await ledger.document(society.site_id, args.number)
        if document is None:
            raise InputError(f"no bill or note {args.number!r} in site {society.site_id!r}",
                             where=args.number, reason="NOT_FOUND")
        return [document]
    if args.draft:
        from rating.billing.run import RunInputs, draft_cycle

        usage = {account: found.lines for account, found in detail.items()}
        return await draft_cycle(ledger, RunInputs(cycle, society.billing, society.numbering, society.units(),
                                                   usage, rules_text=society.rules_text))
    documents = await ledger.documents(society.site_id, cycle_id=cycle.cycle_id, limit=1_000_000)
    if not documents:
        raise InputError(f"cycle {cycle.cycle_id} has no issued bills in site {society.site_id!r}; issue it "
                         "first, or pass --draft", where=f"cycle {cycle.cycle_id}", reason="NOT_FOUND")
    return documents


def _write_all(sources: list, society, out: Path, fmt: str, detail: dict) -> int:
    """Render every document first (a template error writes nothing), then write."""
    from rating.billing import render

    files: list[tuple[Path, bytes]] = []
    for source in sources:
        view = render.bill_view(source, society.document, detail.get(source.account_id))
        name = view.number if not view.draft else f"DRAFT-{view.account_id}"
        if fmt in ("pdf", "both"):
            files.append((out / file_name(name, ".pdf"), render.bill_pdf(view)))
        if fmt in ("html", "both"):
            files.append((out / file_name(name, ".html"), render.bill_html(view, society.templates).encode()))
    out.mkdir(parents=True, exist_ok=True)
    for path, data in files:
        path.write_bytes(data)
    return len(files)


def statement_format(args: argparse.Namespace) -> str:
    """The format `rating statement` writes (its range checked first)."""
    from rating.billing.statements import check_range

    check_range(args.first, args.last)
    fmt = args.format or (SUFFIXES.get(args.out.suffix.lower()) if args.out else "csv")
    if fmt is None:
        raise InputError(f"cannot tell the format of {args.out}; give --format or a suffix of "
                         f"{', '.join(SUFFIXES)}", where="--out")
    return fmt


def write_statement(args: argparse.Namespace, site_file: Path, with_ledger: Callable) -> int:
    from rating.billing import render
    from rating.billing.inputs import load_site_billing
    from rating.billing.statements import statement

    fmt = statement_format(args)
    society = load_site_billing(site_file)
    account = society.config.registry.accounts.get(args.account)
    if account is None:
        raise InputError(f"no account {args.account!r} in site {society.site_id!r}", where="--account",
                         reason="NOT_FOUND")

    async def write(ledger) -> int:
        found = await statement(ledger, society.site_id, args.account, args.first, args.last)
        data = render.statement_bytes(found, fmt, society.document, society.templates, account.name)
        return put_statement(args, data, len(found.rows))

    return with_ledger(args, write)


def put_statement(args: argparse.Namespace, data: bytes, rows: int) -> int:
    """A statement's bytes to --out (said on stderr) or to stdout."""
    if args.out is None:
        sys.stdout.buffer.write(data)
    else:
        args.out.write_bytes(data)
        sys.stderr.write(f"wrote the statement of {args.account} ({rows} rows) to {args.out}\n")
    return EXIT_OK
