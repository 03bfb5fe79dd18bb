"""`rating serve` with a site's reminders.toml: a bill issued through the
BillingService writes its "issued" notice in the issue's transaction, the
server's relay sends it to a real local HTTP sink once (a restart sends
nothing again), and the STOP reply route is mounted on the HTTP listener. A
site without reminders.toml is served as before: no notify tables, no route."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rating.cli.commands import main
from rating.client.billing import BillingClient
from tests.billing_server import SITE_NAME, serving, settings, write_society
from tests.notify_servers import HttpSink
from tests.servers import free_port

DEMO = Path(__file__).resolve().parent.parent / "examples" / "reminders"
CYCLE = "2025-05"
TOKEN = "inbound-secret"


@pytest.fixture
def sink():
    found = HttpSink().start()
    yield found
    found.close()


def society(tmp_path: Path, sink: HttpSink | None) -> Path:
    site = write_society(tmp_path / "society")
    if sink is not None:  # quiet hours dropped: the test runs at any hour
        shutil.copytree(DEMO / "templates", site.parent / "templates")
        text = (DEMO / "reminders.toml").read_text(encoding="utf-8")
        text = text.replace("port = 2525", f"port = {free_port()}")
        text = text.replace("http://127.0.0.1:8099/sms", sink.url)
        text = "\n".join(line for line in text.splitlines() if not line.startswith("quiet_hours"))
        (site.parent / "reminders.toml").write_text(text + "\n", encoding="utf-8")
    return site


def cli(site: Path, data_dir: Path, *args: str) -> int:
    return main([*args, "--site", str(site), "--ledger", str(data_dir / "ledger.db"), "--actor", "treasurer"])


def wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def post_reply(port: int, text: str, token: str = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/replies/sms", method="POST",
                                     data=json.dumps({"from": "+919812345678", "text": text}).encode(),
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_bill_issued_through_the_server_is_sent_once_and_not_again_after_a_restart(tmp_path, sink):
    site, data_dir = society(tmp_path, sink), tmp_path / "data"
    data_dir.mkdir()
    assert cli(site, data_dir, "reminders", "contact", "A-0101", "--channel", "sms", "--address",
               "98123 45678") == 0
    assert cli(site, data_dir, "reminders", "consent", "A-0101", "in", "--channel", "sms") == 0
    served_settings = settings(site, data_dir, reminders_interval_s=0.1)
    with serving(served_settings) as served:
        with BillingClient(served.target, site_id=SITE_NAME) as client:
            client.issue(CYCLE, actor="treasurer")
        wait_for(lambda: len(sink.requests) == 1)
        [sent] = sink.requests
        assert (sent["to"], sent["template"], sent["language"]) == ("+919812345678", "bill_issued", "en")
        assert sent["variables"]["bill_number"].startswith("B/"), sent
    with serving(served_settings) as served:
        with BillingClient(served.target, site_id=SITE_NAME) as client:
            client.issue(CYCLE, actor="treasurer")  # a retry: the issue and its notice are there already
        time.sleep(1.0)  # ten relay passes
    assert sink.count == 1 and sink.duplicates == 0


def test_the_stop_reply_route_is_mounted_on_the_http_listener(tmp_path, sink, monkeypatch):
    monkeypatch.setenv("RATING_SMS_INBOUND_TOKEN", TOKEN)
    site, data_dir = society(tmp_path, sink), tmp_path / "data"
    data_dir.mkdir()
    cli(site, data_dir, "reminders", "contact", "A-0101", "--channel", "sms", "--address", "98123 45678")
    cli(site, data_dir, "reminders", "consent", "A-0101", "in", "--channel", "sms")
    with serving(settings(site, data_dir, http_port=0, http_port_file=str(tmp_path / "http.port"))):
        port = int((tmp_path / "http.port").read_text())
        assert post_reply(port, "STOP", token="wrong")[0] == 401
        assert post_reply(port, "STOP") == (200, {"action": "opt_out", "cancelled": 0})
    assert cli(site, data_dir, "reminders", "log", "A-0101") == 0


def test_a_site_without_reminders_is_served_as_before(tmp_path):
    site, data_dir = society(tmp_path, None), tmp_path / "data"
    data_dir.mkdir()
    with serving(settings(site, data_dir, http_port=0, http_port_file=str(tmp_path / "http.port"),
                          reminders_interval_s=0.1)) as served:
        assert served.running.reminders is None
        with BillingClient(served.target, site_id=SITE_NAME) as client:
            assert client.issue(CYCLE, actor="treasurer")
        port = int((tmp_path / "http.port").read_text())
        assert post_reply(port, "STOP")[0] == 404  # no route: the listener's own not-found
    with sqlite3.connect(data_dir / "ledger.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "dues_entries" in tables and not {t for t in tables if t.startswith("notify_")}
