"""kill -9 of a real `rating serve` between receiving webhooks and answering them,
then the gateway's retries: every payment is applied once (docs/payments.md,
"Gateway webhooks")."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time

import asyncpg

from rating.billing.documents import Cycle
from rating.billing.ledger_postgres import PostgresDuesLedger
from rating.billing.ledger_sqlite import SqliteDuesLedger
from tests.billing_drafts import batch, draft
from tests.prepaid_site import account_ids, write_site
from tests.test_prepaid_crash import ServeProcess, serve_args
from tests.web_gateway import SECRET, Gateway, body_of, event, write_secrets

pytest_plugins = ["tests.prepaid_backends"]  # fixtures: backends, redis_server, postgres_server
SITE = "Test Towers"
MAY = Cycle(SITE, dt.date(2025, 5, 1), dt.date(2025, 5, 31), dt.date(2025, 6, 1), dt.date(2025, 6, 15))
FLATS = 60
BILL_MINOR = 262_000


def dues_ledger(backends):
    if backends.postgres is None:
        return SqliteDuesLedger(backends.folder / "data" / "ledger.db")
    return PostgresDuesLedger(backends.postgres.dsn, schema=backends.schema)


def issue_bills(backends) -> None:
    async def go():
        ledger = dues_ledger(backends)
        await ledger.open()
        bills = [draft(a, MAY, maintenance=250_000, water=12_000) for a in account_ids(FLATS)]
        await ledger.issue(batch(bills, MAY))
        await ledger.close()
    asyncio.run(go())


async def payments_committed(backends) -> int:
    """Read straight from the database, beside the running server."""
    if backends.postgres is None:
        with sqlite3.connect(backends.folder / "data" / "ledger.db", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM dues_payments").fetchone()[0]
    con = await asyncpg.connect(backends.postgres.dsn)
    try:
        return await con.fetchval(f"SELECT COUNT(*) FROM {backends.schema}.dues_payments")
    finally:
        await con.close()


async def send_without_reading(port: int, requests: list[bytes]) -> list[asyncio.StreamWriter]:
    """Each request on its own connection, written whole; no answer is read (the gateway
    is still waiting for them when the server dies)."""
    writers = []
    for request in requests:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        writers.append(writer)
    await asyncio.gather(*(w.drain() for w in writers))
    return writers


def http_request(gateway: Gateway, doc: dict) -> bytes:
    body = body_of(doc)
    headers = gateway.headers(body)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST /webhooks/{gateway.name} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            f"content-length: {len(body)}\r\n{head}\r\n").encode() + body


def test_kill9_between_receiving_webhooks_and_answering_them_then_retries_apply_each_once(backends,
                                                                                         tmp_path):
    site = write_site(tmp_path / "site", flats=FLATS)
    secrets = write_secrets(tmp_path / "webhooks.toml", {"razorpay": [SECRET]})
    issue_bills(backends)
    http_port_file = tmp_path / "http_port"
    args = [*serve_args(backends, site), "--http-port", "0", "--http-port-file", str(http_port_file),
            "--webhook-secrets-file", str(secrets)]
    events = [event("captured", amount_minor=BILL_MINOR, unit=account, bill=f"B/25-26/{n:06d}")
              for n, account in enumerate(account_ids(FLATS), start=1)]
    server = ServeProcess(tmp_path, args).start()
    try:
        port = _http_port(http_port_file)
        gateway = Gateway(f"http://127.0.0.1:{port}")

        async def burst_then_kill() -> int:
            writers = await send_without_reading(port, [http_request(gateway, e) for e in events])
            deadline = time.monotonic() + 30
            while await payments_committed(backends) == 0:  # the first commit: the rest are in flight
                assert time.monotonic() < deadline, "no payment was committed"
                await asyncio.sleep(0.002)
            server.kill9()
            for writer in writers:
                writer.close()
            return await payments_committed(backends)

        committed = asyncio.run(burst_then_kill())
        # killed mid-burst, no answer read: committed and unanswered, and (unless one group
        # commit took the whole burst) some not begun
        assert 1 <= committed <= FLATS
        http_port_file.unlink()
        server.start()  # the same ledger
        gateway = Gateway(f"http://127.0.0.1:{_http_port(http_port_file)}")
        answers = [gateway.post(e) for e in events]  # the gateway's retries, signed afresh
        assert [a.status_code for a in answers] == [200] * FLATS, [a.text for a in answers]
        assert {a.json()["status"] for a in answers} == {"applied"}
        assert len({a.json()["receipt"] for a in answers}) == FLATS
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.kill9()
    assert asyncio.run(payments_committed(backends)) == FLATS

    async def owed() -> dict[str, int]:
        ledger = dues_ledger(backends)
        await ledger.open()
        items = await ledger.open_items(SITE)
        paid = await ledger.payments(SITE, limit=10 * FLATS)
        await ledger.close()
        return {a: sum(i.amount_minor for i in rows) for a, rows in items.items()}, paid
    left, paid = asyncio.run(owed())
    assert left == {} and sorted(p.reference for p in paid) == sorted(e["data"]["payment_id"] for e in events)


def _http_port(path, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, "the HTTP listener did not start"
        time.sleep(0.02)
    return int(path.read_text())
