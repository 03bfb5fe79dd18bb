"""Command-line verbs of the prepaid service, registered in rating.cli.commands:

    rating serve       run the gRPC server (embedded default, or --redis/--postgres)
    rating topup       credit a wallet (refund and adjust: the other movements)
    rating balance     show an account's wallets
    rating stream      stream a readings file to the server, print the events
    rating events      follow balance events from a cursor
    rating reconcile   prove the balance store equals the ledger
    rating rebuild     restore the balance store (Redis) from the ledger

Client verbs find the server with --server (or RATING_SERVER) and a bearer
token with --token-file (or RATING_TOKEN). A call whose outcome is unknown
(rating.client.retry) is sent again with the same key until --timeout; still
unanswered, the verb exits with EXIT_OUTCOME_UNKNOWN naming the key.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path

from rating.cli.commands import EXIT_ERROR, EXIT_OK, subcommand
from rating.errors import InputError
from rating.fixedpoint import exact_units
from rating.prepaid.wallets import AMOUNT_LIMIT_MINOR, STATUS_WORDS, EventType

EXIT_UNAVAILABLE = 3  # a backend or the server cannot be reached
EXIT_MISMATCH = 4  # reconcile found differences
EXIT_OUTCOME_UNKNOWN = 5  # no answer in time: maybe applied; run again with the same key
EVENT_NAMES = {e.value: e.name for e in EventType}  # the proto's EVENT_TYPE_<NAME>
LEVELLED = (EventType.LOW_BALANCE, EventType.RECOVERED)  # events that name a warning level
STATUS_NAMES = {**dict(enumerate(STATUS_WORDS)), 0: "-"}  # 0: no state reported


# ---------------------------------------------------------------- shared options

def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file with a [server] table")
    parser.add_argument("--redis", metavar="URL", dest="redis_url",
                        help="Redis for hot balances (default: in-process)")
    parser.add_argument("--postgres", metavar="DSN", dest="postgres_dsn",
                        help="PostgreSQL ledger (default: SQLite in --data-dir)")
    parser.add_argument("--postgres-schema", metavar="NAME", dest="postgres_schema")
    parser.add_argument("--data-dir", metavar="DIR", dest="data_dir",
                        help="folder of the embedded SQLite ledger (default: ./rating-data)")


def _settings(args: argparse.Namespace, **extra):
    from rating.server.settings import load_settings

    names = ("redis_url", "postgres_dsn", "postgres_schema", "data_dir", *extra)
    flags = {name: getattr(args, name, None) for name in names}
    return load_settings(file=args.config, flags=flags)


def _client_arguments(parser: argparse.ArgumentParser, *, ledger_without: bool = False) -> None:
    """The options of a client verb; `ledger_without`: a verb that opens the
    ledger directly when no server is named (--server or $RATING_SERVER)."""
    if ledger_without:
        parser.add_argument("--server", metavar="HOST:PORT", default=os.environ.get("RATING_SERVER") or None,
                            help="go through the rating server that holds the ledger (default: "
                                 "$RATING_SERVER; none: open the ledger directly)")
    else:
        parser.add_argument("--server", metavar="HOST:PORT",
                            default=os.environ.get("RATING_SERVER", "127.0.0.1:50051"),
                            help="the rating server (default: $RATING_SERVER or 127.0.0.1:50051)")
    parser.add_argument("--token-file", metavar="FILE", help="bearer token (default: $RATING_TOKEN)")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca", metavar="PEM", help="certificates to trust (TLS)")
    parser.add_argument("--client-cert", metavar="PEM", dest="cert", help="client certificate (mutual TLS)")
    parser.add_argument("--client-key", metavar="PEM", dest="cert_key", help="client key (mutual TLS)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=30.0,
                        help="how long a call may take, retries included (default 30)")
    parser.add_argument("--attempt-timeout", metavar="SECONDS", type=float, default=None,
                        dest="attempt_timeout",
                        help="the first attempt's deadline, doubled at each retry (default: --timeout)")


def _client(args: argparse.Namespace, kind=None):
    """A client of `kind` (default RatingClient) as the client options say."""
    from rating.client.calls import RatingClient

    kind = kind or RatingClient
    token = os.environ.get("RATING_TOKEN")
    if args.token_file:
        token = Path(args.token_file).read_text(encoding="utf-8").strip()
    read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
    return kind(args.server, token=token, tls=args.tls or bool(args.ca),
                        root_certificates=read(args.ca), client_cert=read(args.cert),
                        client_key=read(args.cert_key), timeout_s=args.timeout,
                        attempt_timeout_s=args.attempt_timeout)


def _client_failure(exc) -> int:
    import grpc

    from rating.client.calls import OutcomeUnknown

    if isinstance(exc, OutcomeUnknown):
        return _outcome_unknown(exc.message, f"run the command again with the same --key {exc.key}")
    detail = f" ({exc.reason})" if exc.reason else ""
    sys.stderr.write(f"rating: error: {exc.code.name}{detail}: {exc.message}\n")
    return EXIT_UNAVAILABLE if exc.code in (grpc.StatusCode.UNAVAILABLE,
                                            grpc.StatusCode.DEADLINE_EXCEEDED) else EXIT_ERROR


def _outcome_unknown(message: str, hint: str) -> int:
    sys.stderr.write(f"rating: error: {message}\n"
                     f"rating: outcome unknown: {hint}; it is applied at most once\n")
    return EXIT_OUTCOME_UNKNOWN


def _money(minor: int, exponent: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d}" if exponent else f"{sign}{whole}"


def _minor(amount: str, exponent: int, *, where: str) -> int:
    """AMOUNT as an exact count of the currency's minor units ("500.00" at
    exponent 2 is 50000), within what a movement may carry."""
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise InputError(f"not an amount: {amount!r}", where=where) from None
    if not value.is_finite():  # NaN, sNaN, Infinity
        raise InputError(f"not an amount: {amount!r}; give a decimal number such as 500.00", where=where)
    largest = _money(AMOUNT_LIMIT_MINOR, exponent)
    if value.adjusted() > len(largest):  # far out of range: no arithmetic on it
        raise InputError(f"{amount} is out of range: at most {largest}", where=where)
    minor = exact_units(value, exponent)
    if minor is None:
        raise InputError(f"{amount} has more decimals than the currency's minor unit", where=where)
    if abs(minor) > AMOUNT_LIMIT_MINOR:
        raise InputError(f"{amount} is out of range: at most {largest}", where=where)
    return minor


# ---------------------------------------------------------------- serve

SERVE_DESCRIPTION = """
    Run the gRPC server (rating.v1: RatingService, PrepaidService,
    BillingService when a billing.toml lies beside the site file, health,
    reflection). With no options it runs the embedded default: balances in
    process, the ledger in ./rating-data/ledger.db, on 127.0.0.1:50051.
    --redis and --postgres switch to the real backends; every setting can
    also come from --config FILE ([server] table) or RATING_<NAME> variables.
    SIGTERM or Ctrl-C drains: streams answer what they hold, calls finish
    within --grace seconds, answered operations are settled, then it exits.

    examples:
      rating serve --site site.toml
      rating serve --redis redis://127.0.0.1:6379/0 --postgres postgresql://rating@db/rating
      RATING_TOKEN_FILE=/etc/rating/tokens rating serve --host 0.0.0.0 --tls-cert s.pem --tls-key s.key
"""


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _backend_arguments(parser)
    parser.add_argument("--site", metavar="FILE", help="site file (default: the config stored in the ledger)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 50051; 0: any free port)")
    parser.add_argument("--port-file", metavar="FILE", dest="port_file", help="write the bound port here")
    parser.add_argument("--token-file", metavar="FILE", dest="token_file",
                        help="bearer tokens, one per line (none: authentication off)")
    parser.add_argument("--tls-cert", metavar="PEM", dest="tls_cert")
    parser.add_argument("--tls-key", metavar="PEM", dest="tls_key")
    parser.add_argument("--tls-client-ca", metavar="PEM", dest="tls_client_ca",
                        help="require client certificates signed by this CA (mutual TLS)")
    parser.add_argument("--message-bytes-max", "--max-message-bytes", type=int, dest="message_bytes_max",
                        help="largest request or answer (64 MiB; the second name is the old one)")
    parser.add_argument("--concurrent-rpcs-max", "--max-concurrent-rpcs", type=int,
                        dest="concurrent_rpcs_max",
                        help="calls at once (1000; the second name is the old one)")
    parser.add_argument("--ops-pending-max", type=int, dest="ops_pending_max",
                        help="operations admitted and not yet settled; more are refused (4096)")
    parser.add_argument("--batch-rows-max", type=int, dest="batch_rows_max")
    parser.add_argument("--anomaly-rows-max", type=int, dest="anomaly_rows_max",
                        help="anomaly rows in a deduction answer; GetAnomalies pages the rest (10000)")
    parser.add_argument("--grace", type=float, dest="grace_s", help="seconds to drain on shutdown")
    parser.add_argument("--http-port", type=int, dest="http_port",
                        help="HTTP listener for payment webhooks and orders "
                             "(default -1: none; 0: any free port)")
    parser.add_argument("--http-port-file", metavar="FILE", dest="http_port_file",
                        help="write the bound HTTP port here")
    parser.add_argument("--webhook-secrets-file", metavar="FILE", dest="webhook_secrets_file",
                        help="the gateways' webhook secrets (TOML; re-read when it changes)")
    parser.add_argument("--log-format", choices=("json", "text"), dest="log_format")


@subcommand("serve", help="run the gRPC server (prepaid balances, batch rating)",
            description=SERVE_DESCRIPTION, arguments=_serve_arguments)
def serve_command(args: argparse.Namespace) -> int:
    from rating.prepaid.errors import Unavailable
    from rating.server import app

    settings = _settings(args, site=None, host=None, port=None, port_file=None, token_file=None,
                         tls_cert=None, tls_key=None, tls_client_ca=None, message_bytes_max=None,
                         concurrent_rpcs_max=None, ops_pending_max=None, batch_rows_max=None,
                         anomaly_rows_max=None, grace_s=None, http_port=None, http_port_file=None,
                         webhook_secrets_file=None, log_format=None)
    app.setup_logging(settings)
    try:
        asyncio.run(app.serve(settings))
    except Unavailable as exc:
        sys.stderr.write(f"rating: error: {exc.message}\n")
        return EXIT_UNAVAILABLE
    return EXIT_OK


# ---------------------------------------------------------------- movements and balances

MOVE_DESCRIPTION = """
    Record a movement on one wallet of an account. AMOUNT is in currency
    units (500.00); --key is the idempotency key (a receipt number, a bank
    reference): running the command again with the same key changes nothing
    and prints the first result. A call whose outcome is unknown (a timeout,
    a lost connection) is sent again with the same key until --timeout;
    still unanswered, the command exits 5 naming the key: run it again.

    examples:
      rating topup F0001 electricity 500.00 --key RCPT-2025-0042 --method cash
      rating refund F0001 water 120 --key REF-77 --method bank_transfer --reason "moved out"
      rating adjust F0001 water -35.50 --key ADJ-9 --reason "meter replaced"
"""


def _move_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser)
    parser.add_argument("account")
    parser.add_argument("wallet")
    parser.add_argument("amount")
    parser.add_argument("--key", dest="idempotency_key", required=True, help="idempotency key")
    parser.add_argument("--method", choices=("online", "cash", "cheque", "bank_transfer"), default=None)
    parser.add_argument("--reason", default="")
    parser.add_argument("--reference", default="")
    parser.add_argument("--actor", default=os.environ.get("RATING_ACTOR", ""),
                        help="refund with approval: who asks, when the token does not name it "
                             "(default $RATING_ACTOR)")


def _move(kind: str, args: argparse.Namespace) -> int:
    from rating.client.calls import ClientError

    with _client(args) as client:
        try:
            exponent = client.balance(args.account).minor_unit_exponent
            amount = _minor(args.amount, exponent, where="AMOUNT")
            if kind == "topup":
                reply = client.topup(args.account, args.wallet, amount, key=args.idempotency_key,
                                     method=args.method or "cash", reason=args.reason,
                                     reference=args.reference)
            elif kind == "refund":
                reply = client.refund(args.account, args.wallet, amount, key=args.idempotency_key,
                                      method=args.method or "bank_transfer", reason=args.reason,
                                      reference=args.reference, actor=args.actor)
            else:
                reply = client.adjust(args.account, args.wallet, amount, key=args.idempotency_key,
                                      reason=args.reason, reference=args.reference)
        except ClientError as exc:
            return _client_failure(exc)
    _print_movement(kind, reply, exponent)
    return EXIT_OK


def _print_movement(kind: str, reply, exponent: int) -> None:
    note = " (already recorded: first result)" if reply.replayed else ""
    if reply.refund_status:  # the site's refunds wait for an approver
        who = f"asked by {reply.requested_by}" + (f", {reply.refund_status} by {reply.decided_by}"
                                                  if reply.decided_by else "")
        note = f" [refund {reply.idempotency_key}: {reply.refund_status}, {who}]{note}"
    print(f"{kind} {reply.account_id} {reply.wallet} {_money(reply.amount_minor, exponent)}: balance "
          f"{_money(reply.balance_minor, exponent)} {STATUS_NAMES[reply.status]} [#{reply.sequence}]{note}")
    for e in reply.events:
        level = f" level {_money(e.level_minor, exponent)}" if e.type in LEVELLED else ""
        print(f"event {EVENT_NAMES.get(e.type, e.type)} {e.account_id} {e.wallet} "
              f"{_money(e.balance_minor, exponent)}{level}")


DECIDE_DESCRIPTION = """
    Where the site sets [prepaid] refund_approval = true, `rating refund`
    asks for a refund and moves nothing; an approver other than the one who
    asked approves it (the money moves, never below 0) or rejects it with a
    reason. KEY is the refund's --key.

    examples:
      rating decide-refund REF-77 --approve
      rating decide-refund REF-77 --reject --reason "paid by cheque instead"
"""


def _decide_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser)
    parser.add_argument("key", help="the refund's idempotency key (its --key)")
    decision = parser.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    parser.add_argument("--reason", default="", help="a rejection: why")
    parser.add_argument("--actor", default=os.environ.get("RATING_ACTOR", ""),
                        help="who decides, when the token does not name it (default $RATING_ACTOR)")


@subcommand("decide-refund", help="approve or reject a prepaid refund that waits for approval",
            description=DECIDE_DESCRIPTION, arguments=_decide_arguments)
def decide_refund_command(args: argparse.Namespace) -> int:
    from rating.client.calls import ClientError

    with _client(args) as client:
        try:
            reply = client.decide_wallet_refund(args.key, approve=args.approve, reason=args.reason,
                                                actor=args.actor)
            exponent = client.balance(reply.account_id).minor_unit_exponent
        except ClientError as exc:
            return _client_failure(exc)
    _print_movement("refund", reply, exponent)
    return EXIT_OK


for _kind, _help in (("topup", "credit a prepaid wallet"), ("refund", "pay money back out of a wallet"),
                     ("adjust", "correct a wallet by a signed amount")):
    subcommand(_kind, help=_help, description=MOVE_DESCRIPTION, arguments=_move_arguments)(
        partial(_move, _kind))


BALANCE_DESCRIPTION = """
    Show the wallets of an account: balance, state, thresholds.

    examples:
      rating balance F0001
"""


def _balance_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser)
    parser.add_argument("account")


@subcommand("balance", help="show an account's wallets", description=BALANCE_DESCRIPTION,
            arguments=_balance_arguments)
def balance_command(args: argparse.Namespace) -> int:
    from rating.client.calls import ClientError

    with _client(args) as client:
        try:
            account = client.balance(args.account)
        except ClientError as exc:
            return _client_failure(exc)
    e = account.minor_unit_exponent
    print(f"{account.account_id} ({account.currency})")
    for w in account.wallets:
        print(f"  {w.wallet:<26} {_money(w.balance_minor, e):>14}  {STATUS_NAMES[w.status]:<16} "
              f"low below {', '.join(_money(v, e) for v in w.warning_levels_minor or [w.low_balance_minor])}")
    return EXIT_OK


# ---------------------------------------------------------------- stream

STREAM_DESCRIPTION = """
    Stream a readings file (Parquet, Arrow IPC or CSV: meter_id, ts, value)
    to the server in batches, show a progress bar on stderr and print each
    balance event on stdout. Batch ids are the file's content hash and the
    batch number, so running the command again (after an interruption, or
    by mistake) resends the same batches and changes nothing twice. When the
    server goes away the command reconnects and resends from the last
    acknowledged batch, for up to --retry seconds without an answer (a batch
    unanswered for --timeout seconds counts as lost); then it exits 3 (the
    server stayed unavailable) or 5 (answers were lost: run the command
    again, it resends from the batch it names).

    examples:
      rating stream readings.parquet
      rating stream day.csv --batch-rows 5000 --server 10.0.0.5:50051 --token-file token
"""


def _stream_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser)
    parser.add_argument("file", type=Path)
    parser.add_argument("--batch-rows", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=8, help="batches in flight (default 8)")
    parser.add_argument("--batch-prefix", default=None, help="batch id prefix (default: from the content)")
    parser.add_argument("--retry", type=float, default=60.0, dest="retry_s",
                        help="seconds to keep resending without an answer (default 60)")


def _file_prefix(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.stem}-{digest.hexdigest()[:16]}"


@subcommand("stream", help="stream a readings file to the server and print the events",
            description=STREAM_DESCRIPTION, arguments=_stream_arguments)
def stream_command(args: argparse.Namespace) -> int:
    import grpc

    from rating.cli.progress import Progress
    from rating.client.calls import ClientError, readings_bytes
    from rating.client.retry import Attempts, outcome_unknown
    from rating.readings.sources import count_readings, iter_reading_batches

    if args.batch_rows < 1 or args.window < 1:
        raise InputError("--batch-rows and --window must be at least 1")
    prefix = args.batch_prefix or _file_prefix(args.file)
    batches = [(f"{prefix}-{i:06d}", readings_bytes(b))
               for i, b in enumerate(iter_reading_batches(args.file, batch_rows=args.batch_rows))]
    acked, deducted, events, replayed = 0, 0, 0, 0
    attempts, unknown = Attempts(args.retry_s), False  # since the last answer
    with Progress(total=count_readings(args.file), label="readings") as progress, _client(args) as client:
        while acked < len(batches):
            try:
                replies = client.stream(batches[acked:], window=args.window, answer_timeout_s=args.timeout)
                for reply in replies:
                    acked += 1
                    deducted += reply.deducted_minor
                    replayed += reply.replayed
                    progress(reply.readings)
                    for e in reply.events:
                        events += 1
                        progress.close()
                        print(f"{EVENT_NAMES.get(e.type, e.type)} {e.account_id} {e.wallet} "
                              f"balance_minor={e.balance_minor}{_level(e)} batch={reply.batch_id}",
                              flush=True)
                    attempts, unknown = Attempts(args.retry_s), False
            except ClientError as exc:
                # The server restarts or drains, or the answers were lost: resend from the last answer.
                this_unknown = outcome_unknown(exc.code, exc.metadata)
                unknown |= this_unknown
                retried = this_unknown or exc.code == grpc.StatusCode.UNAVAILABLE
                pause = attempts.pause_s() if retried else None
                if pause is None:
                    progress.close()
                    if unknown:
                        first = batches[acked][0]
                        return _outcome_unknown(
                            f"no answer for batch {first!r} in {args.retry_s:g} s ({exc})",
                            f"run the same command again: it resends from {first} under the same batch ids")
                    return _client_failure(exc)
                time.sleep(pause)
    sys.stderr.write(f"stream: {len(batches)} batches ({replayed} already applied), {events} events, "
                     f"{deducted} minor units deducted\n")
    return EXIT_OK


# ---------------------------------------------------------------- events


def _level(e) -> str:
    """` level_minor=N` for an event that names a warning level."""
    return f" level_minor={e.level_minor}" if e.type in LEVELLED else ""


EVENTS_DESCRIPTION = """
    Print balance events after a cursor (default: from the first), then
    follow new ones until interrupted (--once: stop when caught up). Each
    line ends with the event's cursor: pass the last one to --after to
    resume without missing any.

    examples:
      rating events --once
      rating events --after 1234 --type CUT_OFF --type RESTORED --type RECOVERED
"""


def _events_arguments(parser: argparse.ArgumentParser) -> None:
    _client_arguments(parser)
    parser.add_argument("--after", default="", help="cursor to resume after")
    parser.add_argument("--type", action="append", default=[], choices=sorted(EVENT_NAMES.values()))
    parser.add_argument("--account", default="")
    parser.add_argument("--once", action="store_true", help="stop when caught up")


@subcommand("events", help="follow balance events from a cursor", description=EVENTS_DESCRIPTION,
            arguments=_events_arguments)
def events_command(args: argparse.Namespace) -> int:
    from rating.client.calls import ClientError

    codes = {name: code for code, name in EVENT_NAMES.items()}
    with _client(args) as client:
        try:
            for e in client.events(args.after, types=[codes[t] for t in args.type], account_id=args.account,
                                   stop_at_end=args.once):
                print(f"{EVENT_NAMES.get(e.type, e.type)} {e.account_id} {e.wallet} "
                      f"balance_minor={e.balance_minor}{_level(e)} cause={e.cause} cursor={e.cursor}",
                      flush=True)
        except ClientError as exc:
            return _client_failure(exc)
    return EXIT_OK


# ---------------------------------------------------------------- reconcile and rebuild

RECONCILE_DESCRIPTION = """
    Compare every wallet's balance in the balance store with the sum of its
    ledger entries. Exit 0 when they are equal, 4 when they differ (run
    `rating rebuild`). With the embedded default the store lives inside the
    server, so reconcile runs against --redis.

    examples:
      rating reconcile --redis redis://127.0.0.1:6379/0 --postgres postgresql://rating@db/rating
"""


def _reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    _backend_arguments(parser)


@subcommand("reconcile", help="prove the balance store equals the ledger",
            description=RECONCILE_DESCRIPTION, arguments=_reconcile_arguments)
def reconcile_command(args: argparse.Namespace) -> int:
    from rating.prepaid.reconcile import reconcile
    from rating.server.app import backends

    settings = _settings(args)
    if not settings.redis_url:
        raise InputError("reconcile compares a Redis store with the ledger: give --redis "
                         "(the embedded store is rebuilt from the ledger at every start)")
    store, ledger = backends(settings)

    async def run():
        await ledger.open()
        try:
            return await reconcile(store, ledger)
        finally:
            await ledger.close()
            await store.close()

    report = _with_backends(run)
    if report is None:
        return EXIT_UNAVAILABLE
    print("\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_MISMATCH


REBUILD_DESCRIPTION = """
    Make the Redis balance store hold exactly what the ledger says: every
    wallet's balance is the sum of its settled entries and its state follows
    its last event; committed operations that were never applied are then
    applied (and their events recorded). Use it after Redis lost data, with
    the server stopped: while a server holds the ledger it refuses (exit 3).

    examples:
      rating rebuild --redis redis://127.0.0.1:6379/0 --postgres postgresql://rating@db/rating
"""


@subcommand("rebuild", help="restore the balance store (Redis) from the ledger",
            description=REBUILD_DESCRIPTION, arguments=_reconcile_arguments)
def rebuild_command(args: argparse.Namespace) -> int:
    from rating.prepaid.reconcile import reconcile
    from rating.server.app import make_service

    settings = _settings(args)
    if not settings.redis_url:
        raise InputError("rebuild restores a Redis store: give --redis")
    service = make_service(settings, rebuild_on_start=True, rating_process=False)

    async def run():
        await service.start()  # rebuilds, then applies what was committed and not applied
        try:
            return await reconcile(service.store, service.ledger)
        finally:
            await service.close()

    report = _with_backends(run)
    if report is None:
        return EXIT_UNAVAILABLE
    print("rebuilt: " + "\n".join(report.lines()))
    return EXIT_OK if report.ok else EXIT_MISMATCH


def _with_backends(run):
    from rating.prepaid.errors import Unavailable
    from rating.prepaid.ledger.base import LedgerUnavailable
    from rating.prepaid.store.base import StoreUnavailable

    try:
        return asyncio.run(run())
    except (Unavailable, LedgerUnavailable, StoreUnavailable) as exc:
        sys.stderr.write(f"rating: error: {getattr(exc, 'message', exc)}\n")
        return None
