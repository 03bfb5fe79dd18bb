"""rating reminders plan|send|contact|consent|tag|log on the demo society, with
the demo reminders.toml and templates beside its site file: in process
through rating.cli.commands.main on the SQLite ledger, with a real local SMTP
server and HTTP sink as the channels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from rating.cli.commands import main
from rating.cli.demo import generate_demo
from tests.notify_servers import HttpSink
from tests.servers import free_port

DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"


@pytest.fixture
def servers():
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    sink = HttpSink().start()
    yield smtp, sink
    sink.close()
    smtp.stop()


@pytest.fixture
def site_file(tmp_path, servers):
    smtp, sink = servers
    site = generate_demo(tmp_path / "society", towers=1, seed=5).site_file
    shutil.copytree(DEMO / "templates", site.parent / "templates")
    text = (DEMO / "reminders.toml").read_text(encoding="utf-8")
    text = text.replace("port = 2525", f"port = {smtp.port}").replace("http://127.0.0.1:8099/sms", sink.url)
    (site.parent / "reminders.toml").write_text(text, encoding="utf-8")
    return site


def cli(capsys, site_file, *args):
    code = main([str(a) for a in (*args, "--site", site_file, "--ledger", site_file.parent / "ledger.db",
                                  "--actor", "treasurer")])
    out, err = capsys.readouterr()
    return code, out, err


def test_contacts_then_issue_then_plan_shows_each_notice_with_its_text_and_sends_nothing(site_file, capsys,
                                                                                          servers):
    run = lambda *args: cli(capsys, site_file, *args)  # noqa: E731
    assert run("reminders", "contact", "A-0101", "--channel", "email", "--address", "asha@example.org",
               "--name", "Asha Rao")[1] == "A-0101 email: asha@example.org\n"
    assert run("reminders", "contact", "A-0102", "--channel", "sms", "--address", "98123 45678",
               "--language", "hi")[1] == "A-0102 sms: +919812345678\n"
    assert run("reminders", "consent", "A-0102", "in", "--channel", "sms")[0] == 0
    code, out, _ = run("bills", "issue", "--cycle", "2025-05")
    assert code == 0
    code, plan, _ = run("reminders", "plan", "--on", "2025-06-09")
    assert code == 0
    assert plan.splitlines()[0] == "2025-06-09 10:00 +0530  A-0101  d-7  email  asha@example.org  reminder.en"
    assert "    Subject: A-0101: INR 4,757.00 due on 2025-06-16" in plan
    assert "A-0102  d-7  sms  +919812345678  reminder.hi" in plan and "तक देय है" in plan
    assert plan.endswith("2 notices for 2025-06-09 (email 1, sms 1); nothing written or sent\n")
    _, log, _ = run("reminders", "log", "A-0101")
    assert [(r["cause"], r["step"], r["state"]) for r in json.loads(log)] == [
        ("bill_issued", "issued", "queued")]  # written by the issue, not by the plan
    assert servers[1].requests == []


def test_send_queues_the_days_notices_once_and_the_relay_runs(site_file, capsys, servers, monkeypatch):
    run = lambda *args: cli(capsys, site_file, *args)  # noqa: E731
    run("reminders", "contact", "A-0101", "--channel", "email", "--address", "asha@example.org")
    run("bills", "issue", "--cycle", "2025-05")
    code, out, _ = run("reminders", "send")
    assert code == 0 and out.startswith("1 new notices queued; relay: ")  # the issue notice was there already
    code, again, _ = run("reminders", "send")
    assert again.startswith("0 new notices queued")
    exported = json.loads(run("reminders", "log", "A-0101")[1])
    assert {r["cause"] for r in exported} == {"bill_issued", "due_step"}
    assert all(r["state"] in ("sent", "queued") for r in exported)  # queued: deferred by quiet hours


@pytest.mark.parametrize(("args", "message"), [
    (("reminders", "contact", "Z-999", "--channel", "email", "--address", "x@example.org"),
     "no account 'Z-999'"),
    (("reminders", "contact", "A-0101", "--channel", "fax", "--address", "x@example.org"),
     "no channel 'fax'"),
    (("reminders", "contact", "A-0101", "--channel", "sms", "--address", "12345"),
     "not a valid phone number"),
    (("reminders", "consent", "A-0101", "maybe", "--channel", "sms"), "consent is in or out"),
    (("reminders", "tag", "A-0101", "Bad Tag!"), "lower_case_words"),
    (("reminders", "plan", "A-0101"), "takes no account"),
])
def test_bad_input_is_one_line_naming_what_and_nothing_is_written(site_file, capsys, args, message):
    code, out, err = cli(capsys, site_file, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    _, log, _ = cli(capsys, site_file, "reminders", "log", "A-0101")
    assert json.loads(log) == []


def test_a_template_with_an_unknown_tag_stops_every_verb_naming_file_and_line(site_file, capsys):
    bad = site_file.parent / "templates" / "overdue.hi.txt"
    bad.write_text("Subject: x\n{{ amount }}\n", encoding="utf-8")
    code, _, err = cli(capsys, site_file, "reminders", "plan")
    assert code == 2
    assert err.startswith(f"rating: error: {bad}:2: unknown merge tag 'amount'; known: amount_due, ")
    code, _, err = cli(capsys, site_file, "bills", "issue", "--cycle", "2025-05")  # the issue notices too
    assert code == 2 and err.startswith(f"rating: error: {bad}:2: ")
    assert cli(capsys, site_file, "bills", "show", "--cycle", "2025-05")[1].count("B/25-26/") == 0
