"""The BillingService end to end over a real gRPC server, on the embedded
backends and on Redis and PostgreSQL: drafts equal the Python API's, an
issue happens once, bills page in number order, dues imports are all or
nothing and once, statements and rendered bills; bad requests are clear
statuses that change nothing; the CLI verbs through a server print what
they print on the ledger itself, a down server is exit 3 (or 5), a served
ledger is refused to the local verbs, and a bad site, billing or token
file makes `rating serve` create nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from rating.billing.inputs import load_site_billing, run_cycle
from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.billing.run import RunInputs, draft_cycle
from rating.cli.commands import main
from rating.client.billing import BillingClient, document_of, draft_of
from rating.client.calls import ClientError
from rating.v1 import billing_pb2 as pb
from rating.v1 import billing_pb2_grpc
from tests.billing_drafts import run
from tests.billing_server import SITE_NAME, failure, serving, settings, write_society
from tests.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
S = grpc.StatusCode
CYCLE = "2025-05"
LATER = dt.date.today() + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return write_society(tmp_path_factory.mktemp("society"))


pytest_plugins = ["tests.prepaid_backends"]  # backends: the embedded pair, Redis and PostgreSQL


@pytest.fixture
def served(site, backends):
    """A server of the society on each pair of backends (its dues beside its ledger)."""
    with serving(backends.settings(site=str(site), rating_process=0)) as served:
        yield served


def local_drafts(site: Path, tmp_path: Path):
    society = load_site_billing(site)
    inputs = RunInputs(run_cycle(society.site_id, CYCLE, society.billing), society.billing, society.numbering,
                       society.units())
    return run(lambda: SqliteDuesLedger(tmp_path / "local.db"), lambda ledger: draft_cycle(ledger, inputs))


def test_drafts_over_grpc_equal_the_api_and_an_issue_happens_once(served, site, tmp_path):
    expected = local_drafts(site, tmp_path)
    with BillingClient(served.target, site_id=SITE_NAME) as client:
        draft = client.run(CYCLE, bills_max=1000)
        one = client.run(CYCLE, account_id="A-0104")
        before = served.counts()
        first = client.issue(CYCLE, actor="treasurer")
        again = client.issue(CYCLE, actor="someone else")
        other_date = client.issue(CYCLE, bill_date=dt.date(2025, 6, 5))  # the cycle is the key
        after_issue = served.counts()
        bill = client.bill(first.first_number)
        pages = list(client.bill_pages(page_size=7))
        refused = failure(lambda: client.run(CYCLE))
    assert [draft_of(d, SITE_NAME) for d in draft.drafts] == expected
    assert draft.bills == len(expected) == 33
    assert draft.charges_minor == sum(d.charges_minor for d in expected)
    assert [d.account_id for d in one.drafts] == ["A-0104"] and one.bills == 33
    assert before["dues_ops"] == 0 and after_issue["dues_ops"] == 1
    assert (first.first_number, first.last_number, first.bills) == ("B/25-26/000001", "B/25-26/000033", 33)
    assert first.charges_minor == draft.charges_minor and not first.replayed
    assert again.replayed and (again.sequence, again.first_number) == (first.sequence, first.first_number)
    assert other_date.replayed and other_date.sequence == first.sequence and bill.issued_on == "2025-06-01"
    assert document_of(bill).body["lines"] and bill.actor == "treasurer" and bill.account_id == "A-0101"
    assert [line.amount_minor for line in bill.lines] == [line.amount_minor for line in expected[0].lines]
    numbers = [b.number for page in pages for b in page.bills]
    assert len(pages) == 5 and numbers == [f"B/25-26/{n:06d}" for n in range(1, 34)]
    assert pages[-1].next_page_token == "" and all(p.currency == "INR" for p in pages)
    assert (refused.code, refused.reason) == (S.FAILED_PRECONDITION, "CYCLE_ISSUED")


def test_a_deadline_too_short_issues_at_most_once(served):
    stub = billing_pb2_grpc.BillingServiceStub(grpc.insecure_channel(served.target))
    outcomes = []
    for _ in range(3):
        try:
            stub.IssueCycle(pb.CycleRequest(cycle=CYCLE), timeout=0.0005)
            outcomes.append("issued")
        except grpc.RpcError as exc:
            outcomes.append(exc.code())
    with BillingClient(served.target) as client:
        reply = client.issue(CYCLE)
    assert set(outcomes) <= {"issued", S.DEADLINE_EXCEEDED}
    assert served.counts()["dues_ops"] == 1 and reply.bills == 33


def test_a_loaded_configuration_is_what_the_next_run_bills(served, site):
    from rating.client.calls import RatingClient

    accounts = (site.parent / "accounts.csv").read_text(encoding="utf-8")
    bigger = accounts.replace('"A-0101","Flat A-0101 (Lakshmi Reddy)","104.88"',
                              '"A-0101","Flat A-0101 (Lakshmi Reddy)","209.76"')
    assert bigger != accounts
    with BillingClient(served.target) as client:
        before = client.run(CYCLE, account_id="A-0101").drafts[0]
        with RatingClient(served.target) as rating:
            rating.load_config(accounts=bigger.encode())
        after = client.run(CYCLE, account_id="A-0101").drafts[0]
    maintenance = [[line.amount_minor for line in bill.lines if line.head == "maintenance"]
                   for bill in (before, after)]
    assert maintenance[1] == [2 * maintenance[0][0]]


def test_dues_import_is_once_and_all_or_nothing(site, tmp_path):
    good = tmp_path / "arrears.csv"
    good.write_text("unit,head,amount,due_date,note\nA-0101,maintenance,4500,2025-03-31,opening\n"
                    "A-0102,water,125.50,2025-04-15,\n", encoding="utf-8")
    renamed = tmp_path / "same-rows.csv"
    renamed.write_bytes(good.read_bytes())
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,head,amount,due_date\nA-0101,maintenance,10,2025-03-31\nZ-9,water,1,2025-04-15\n",
                   encoding="utf-8")
    huge = tmp_path / "huge.csv"
    huge.write_text("unit,head,amount,due_date\n" + "A-0101,maintenance,1,2025-03-31\n" * 2000,
                    encoding="utf-8")
    with serving(settings(site, tmp_path / "data", max_message_bytes=32 * 1024)) as served, \
            BillingClient(served.target) as client:
        errors = {name: failure(lambda f=f: client.import_dues(f))
                  for name, f in (("bad", bad), ("huge", huge))}
        nothing = served.counts()
        first = client.import_dues(good, actor="office")
        again, same = client.import_dues(good), client.import_dues(renamed)
        after = served.counts()
        draft = client.run(CYCLE, account_id="A-0101")
    assert len(huge.read_bytes()) > 32 * 1024
    assert errors["huge"].code == S.RESOURCE_EXHAUSTED
    assert (errors["bad"].code, errors["bad"].reason) == (S.INVALID_ARGUMENT, "BAD_VALUE")
    assert errors["bad"].message == ("bad.csv row 3 column unit: unknown unit 'Z-9': not an account of the "
                                     "site; nothing imported")
    assert errors["bad"].metadata == {"file": "bad.csv", "row": "3", "column": "unit"}
    assert nothing["dues_ops"] == nothing["dues_entries"] == 0
    assert (first.entries, first.amount_minor, first.replayed) == (2, 462550, False)
    assert first.idempotency_key.startswith("import:")
    assert again.replayed and same.replayed and same.sequence == first.sequence
    assert after["dues_ops"] == 1 and after["dues_entries"] == 2
    arrears = [line for line in draft.drafts[0].lines if line.kind == "arrears"]
    assert [(line.head, line.amount_minor) for line in arrears] == [("maintenance", 450000)]


def test_statements_and_rendered_documents_over_grpc(served, tmp_path):
    dues = tmp_path / "arrears.csv"
    dues.write_text("unit,head,amount,due_date\nA-0101,water,100,2025-04-15\n", encoding="utf-8")
    with BillingClient(served.target) as client:
        client.import_dues(dues)
        issued = client.issue(CYCLE)
        bill = client.bill(issued.first_number)
        # an imported due counts on the day it was imported (today), a bill on its date
        found = client.statement("A-0101", dt.date(2025, 4, 1), LATER)
        before = client.statement("A-0101", dt.date(2025, 1, 1), dt.date(2025, 3, 31))
        after = client.statement("A-0101", dt.date(2025, 6, 2), LATER)
        pdf = client.render_bill(bill.number)
        html = client.render_bill(bill.number, format="html")
        csv = client.render_statement("A-0101", dt.date(2025, 4, 1), LATER, format="csv")
        errors = {
            "format": failure(lambda: client.render_bill(bill.number, format="docx")),
            "account": failure(lambda: client.statement("Z-9", dt.date(2025, 4, 1), dt.date(2025, 6, 30))),
            "range": failure(lambda: client.statement("A-0101", dt.date(2025, 6, 1), dt.date(2025, 4, 1))),
            "bill": failure(lambda: client.render_bill("B/25-26/000999")),
        }
    assert found.opening_minor == 0
    assert [(line.reference, line.description) for line in found.lines][0] == (bill.number, "Bill: Charges")
    assert (found.lines[-1].description, found.lines[-1].amount_minor) == ("Imported dues: Charges", 10000)
    assert found.closing_minor == found.lines[-1].balance_minor == 10000 + bill.total_minor
    assert sum(line.amount_minor for line in found.lines) == found.closing_minor
    assert before.lines == [] and before.closing_minor == 0
    assert after.opening_minor == bill.total_minor and after.closing_minor == found.closing_minor
    assert (pdf.file_name, pdf.media_type) == ("B-25-26-000001.pdf", "application/pdf")
    assert pdf.content.startswith(b"%PDF-") and bill.number in html.content.decode()
    assert html.media_type == "text/html; charset=utf-8"
    rows = csv.content.decode().splitlines()
    assert rows[0].startswith('"on","reference"')
    assert len(rows) == len(found.lines) + 3  # header, opening, rows, closing
    assert {k: (e.code, e.reason) for k, e in errors.items()} == {
        "format": (S.INVALID_ARGUMENT, "BAD_VALUE"), "account": (S.NOT_FOUND, "NOT_FOUND"),
        "range": (S.INVALID_ARGUMENT, "BAD_VALUE"), "bill": (S.NOT_FOUND, "NOT_FOUND")}


def test_bad_requests_are_clear_statuses_that_change_nothing(served):
    stub = billing_pb2_grpc.BillingServiceStub(grpc.insecure_channel(served.target))

    def status(method, request):
        try:
            method(request, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), ClientError.of(exc).reason, exc.details()
        raise AssertionError("the call succeeded")

    before = served.counts()
    got = {
        "unknown bill": status(stub.GetBill, pb.GetBillRequest(number="B/25-26/000999")),
        "other site": status(stub.RunCycle, pb.CycleRequest(site_id="Elsewhere", cycle=CYCLE)),
        "bad cycle": status(stub.IssueCycle, pb.CycleRequest(cycle="2025-13")),
        "bad date": status(stub.IssueCycle, pb.CycleRequest(cycle=CYCLE, bill_date="tomorrow")),
        "early date": status(stub.IssueCycle, pb.CycleRequest(cycle=CYCLE, bill_date="2025-05-30")),
        "garbage readings": status(stub.IssueCycle, pb.CycleRequest(cycle=CYCLE, readings=b"not arrow")),
        "too many drafts": status(stub.RunCycle, pb.CycleRequest(cycle=CYCLE, bills_max=5000)),
        "no such account": status(stub.RunCycle, pb.CycleRequest(cycle=CYCLE, account_id="Z-9")),
        "bad token": status(stub.ListBills, pb.ListBillsRequest(page_token="x9")),
        "no file name": status(stub.ImportDues, pb.ImportDuesRequest(content=b"unit\n")),
        "not a workbook": status(stub.ImportDues,
                                 pb.ImportDuesRequest(file_name="dues.xlsx", content=b"PK no")),
        "wrong suffix": status(stub.ImportDues, pb.ImportDuesRequest(file_name="dues.txt", content=b"a,b\n")),
    }
    assert served.counts() == before
    codes = {name: (code, reason) for name, (code, reason, _) in got.items()}
    assert codes == {
        "unknown bill": (S.NOT_FOUND, "NOT_FOUND"), "other site": (S.NOT_FOUND, "UNKNOWN_SITE"),
        "bad cycle": (S.INVALID_ARGUMENT, "BAD_VALUE"), "bad date": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "early date": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "garbage readings": (S.INVALID_ARGUMENT, "BAD_ARROW"),
        "too many drafts": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "no such account": (S.NOT_FOUND, "NOT_FOUND"),
        "bad token": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "no file name": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "not a workbook": (S.INVALID_ARGUMENT, "BAD_VALUE"),
        "wrong suffix": (S.INVALID_ARGUMENT, "BAD_VALUE")}
    assert "B/25-26/000999" in got["unknown bill"][2] and SITE_NAME in got["other site"][2]
    assert "2025-13" in got["bad cycle"][2] and "tomorrow" in got["bad date"][2]


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_through_a_server_prints_what_it_prints_on_the_ledger(served, site, tmp_path, capsys):
    local = ["--site", site, "--ledger", tmp_path / "local.db", "--actor", "treasurer"]
    remote = ["--server", served.target, "--actor", "treasurer"]
    dues = tmp_path / "arrears.csv"
    dues.write_text("unit,head,amount,due_date\nA-0103,water,99.99,2025-04-15\n", encoding="utf-8")
    steps = [("dues", "import", dues), ("bills", "run", "--cycle", CYCLE, "--accounts", "2"),
             ("bills", "issue", "--cycle", CYCLE), ("bills", "issue", "--cycle", CYCLE),
             ("bills", "show", "B/25-26/000003"), ("bills", "show", "--cycle", CYCLE),
             ("bills", "show", "--account", "A-0103"), ("bills", "show", "B/25-26/000999")]
    for step in steps:
        here, there = cli(capsys, *step, *local), cli(capsys, *step, *remote)
        assert here[:2] == there[:2], step
    assert here[0] == there[0] == 2 and "no bill or note 'B/25-26/000999'" in there[2]
    statement = ("statement", "--account", "A-0103", "--from", "2025-04-01", "--to", "2025-06-30")
    here, there = cli(capsys, *statement, *local), cli(capsys, *statement, *remote)
    assert here == there and here[0] == 0 and here[1].startswith('"on","reference","kind"')
    assert "Bill: Charges" in here[1] and "B/25-26/000003" in here[1]
    for side, args in (("here", local), ("there", remote)):
        code, out, _ = cli(capsys, "bills", "pdf", "B/25-26/000003", "--format", "both", "--out",
                           tmp_path / side, *args)
        assert code == 0 and out == f"wrote 1 documents (2 files) to {tmp_path / side}\n"
    html = [(tmp_path / side / "B-25-26-000003.html").read_text(encoding="utf-8")
            for side in ("here", "there")]
    assert html[0] == html[1] and "B/25-26/000003" in html[0]
    assert (tmp_path / "there" / "B-25-26-000003.pdf").read_bytes().startswith(b"%PDF-")
    code, _, err = cli(capsys, "bills", "pdf", "--cycle", CYCLE, "--draft", "--out", tmp_path / "x", *remote)
    assert code == 2 and "--draft and --readings (usage detail) need the ledger itself" in err
    code, out, err = cli(capsys, "bills", "run", "--cycle", CYCLE, "--server", served.target, "--site", site)
    assert code == 2 and "CYCLE_ISSUED" in err
    elsewhere = tmp_path / "elsewhere.toml"  # only its [site] table is read: the server has the rest
    elsewhere.write_text(site.read_text(encoding="utf-8").replace(SITE_NAME, "Elsewhere Towers"),
                         encoding="utf-8")
    code, out, err = cli(capsys, "bills", "show", "--cycle", CYCLE, *remote, "--site", elsewhere)
    assert code == 2 and out == ""
    assert err.startswith("rating: error: NOT_FOUND (UNKNOWN_SITE): this server bills")
    code, out, err = cli(capsys, "bills", "run", "--cycle", CYCLE, "--ledger", tmp_path / "local.db")
    assert code == 2 and err == "rating: error: --site: give --site SITE.toml (or --server HOST:PORT to go " \
                                "through a running server)\n"


def test_the_cli_against_a_server_that_is_down_exits_3_or_5_and_writes_nothing(tmp_path, capsys,
                                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    down = ["--server", f"127.0.0.1:{free_port()}", "--timeout", "0.5"]
    code, _, err = cli(capsys, "bills", "run", "--cycle", CYCLE, *down)
    assert code == 3 and err.startswith("rating: error: UNAVAILABLE")
    code, _, err = cli(capsys, "bills", "issue", "--cycle", CYCLE, *down)
    assert code == 5 and "outcome unknown: run the same command again" in err
    monkeypatch.setenv("RATING_SERVER", down[1])
    dues = tmp_path / "d.csv"
    dues.write_text("unit,head,amount,due_date\nA-0101,water,1,2025-04-15\n", encoding="utf-8")
    code, _, err = cli(capsys, "dues", "import", dues, "--timeout", "0.5")
    assert code == 5 and "applied at most once" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # no ledger was opened here


def test_serve_with_a_bad_site_or_billing_file_creates_nothing(site, tmp_path, capsys):
    folder = tmp_path / "society"
    folder.mkdir()
    for path in site.parent.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    bad_site = folder / "site.toml"
    bad_site.write_text(site.read_text(encoding="utf-8").replace('currency = "INR"', 'currency = 5'),
                        encoding="utf-8")
    code, _, err = cli(capsys, "serve", "--site", bad_site, "--data-dir", tmp_path / "data1", "--port", "0")
    assert code == 2 and "currency" in err
    bad_site.write_bytes(site.read_bytes())
    billing = folder / "billing.toml"
    billing.write_text(billing.read_text(encoding="utf-8").replace("rate = 38.00", "rate = -38.00"),
                       encoding="utf-8")
    code, _, err = cli(capsys, "serve", "--site", bad_site, "--data-dir", tmp_path / "data2", "--port", "0")
    assert code == 2 and "billing.toml[heads.maintenance]" in err
    tokens = tmp_path / "tokens"
    tokens.write_text("s3cret role=resident\n", encoding="utf-8")
    code, _, err = cli(capsys, "serve", "--site", site, "--data-dir", tmp_path / "data3", "--port", "0",
                       "--token-file", tokens)
    assert code == 2 and err == "rating: error: tokens entry 1: a resident token names its site (site=NAME)\n"
    assert not any((tmp_path / f"data{n}").exists() for n in (1, 2, 3))


def test_a_server_without_billing_rules_says_so(tmp_path):
    from tests.prepaid_site import write_site

    with serving(settings(write_site(tmp_path / "prepaid"), tmp_path / "data")) as served, \
            BillingClient(served.target) as client:
        error = failure(lambda: client.run(CYCLE))
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "ledger.db")) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    assert (error.code, error.reason) == (S.FAILED_PRECONDITION, "NO_BILLING")
    assert "ops" in tables and not [name for name in tables if name.startswith("dues")]


def test_a_served_ledger_is_refused_to_the_local_verbs_and_the_server_takes_them(site, tmp_path):
    port, data = free_port(), tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RATING_SERVER": ""}
    server = subprocess.Popen([sys.executable, "-m", "rating", "serve", "--site", str(site), "--data-dir",
                               str(data), "--port", str(port), "--log-format", "text"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc=server)
        verb = [sys.executable, "-m", "rating", "bills", "issue", "--cycle", CYCLE]
        local = subprocess.run([*verb, "--site", str(site), "--ledger", str(data / "ledger.db")], env=env,
                               capture_output=True, text=True, timeout=120)
        remote = subprocess.run([*verb, "--server", f"127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True, timeout=120)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert local.returncode == 3 and "is held by a running server (rating pid" in local.stderr
    assert "--server HOST:PORT" in local.stderr
    assert remote.returncode == 0, remote.stderr
    assert "33 bills B/25-26/000001 .. B/25-26/000033" in remote.stdout
    shown = subprocess.run([sys.executable, "-m", "rating", "bills", "show", "--cycle", CYCLE, "--site",
                            str(site), "--ledger", str(data / "ledger.db")], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("B/25-26/000001"), shown.stderr


def test_the_docs_list_exactly_the_reasons_billing_and_roles_add():
    import re

    from rating.server import status

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("\n## Errors of billing and roles\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    documented = {reason: set(re.findall(r"`([A-Z_]+)`", codes)) for reason, codes in rows}
    assert documented == {reason: {c.name for c in codes} for reason, codes in status.BILLING_REASONS.items()}
    assert not set(status.BILLING_REASONS) & set(status.REASONS)


def test_each_billing_error_has_its_status():
    from rating.billing.ledger import CycleOverlap, DuesConflict, NotFound, SeriesFull
    from rating.billing.run import CycleIssued
    from rating.errors import InputError
    from rating.server import status

    errors = [DuesConflict("key 'k' was first used for another payload", key="k"), CycleIssued("issued"),
              CycleOverlap("overlaps"), SeriesFull("full"), NotFound("no bill", field="number"),
              InputError("bad row", where="dues.csv row 2", row=2)]
    got = [(status.code_of(e := status.as_prepaid_error(exc)), e.reason, e.metadata) for exc in errors]
    assert got == [(S.ALREADY_EXISTS, "IDEMPOTENCY_CONFLICT", {"key": "k"}),
                   (S.FAILED_PRECONDITION, "CYCLE_ISSUED", {}), (S.FAILED_PRECONDITION, "CYCLE_OVERLAP", {}),
                   (S.FAILED_PRECONDITION, "LIMIT_EXCEEDED", {}),
                   (S.NOT_FOUND, "NOT_FOUND", {"field": "number"}),
                   (S.INVALID_ARGUMENT, "BAD_VALUE", {"row": "2"})]
    assert status.as_prepaid_error(errors[-1]).message == "dues.csv row 2: bad row"
