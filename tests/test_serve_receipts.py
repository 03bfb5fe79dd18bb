"""End to end: a gateway payment posted (signed, over HTTP) to a real `python -m
rating serve` writes its receipt notice in the payment's transaction, and the
server's relay delivers it once to a real local HTTP sink; the gateway's
retry of the same event and a restart of the server send nothing again."""

from __future__ import annotations

import time

from tests.test_prepaid_crash import ServeProcess
from tests.test_serve_reminders import cli, sink, society, wait_for  # noqa: F401 - sink is a fixture
from tests.test_web_crash import _http_port
from tests.web_gateway import SECRET, Gateway, event, write_secrets

PAID_MINOR = 150_000


def serve(tmp_path, site, data_dir) -> tuple[ServeProcess, Gateway]:
    secrets = write_secrets(tmp_path / "webhooks.toml", {"razorpay": [SECRET]})
    port_file = tmp_path / "http_port"
    port_file.unlink(missing_ok=True)
    server = ServeProcess(tmp_path, ["--site", str(site), "--data-dir", str(data_dir), "--http-port", "0",
                                     "--http-port-file", str(port_file),
                                     "--webhook-secrets-file", str(secrets)],
                          env={"RATING_REMINDERS_INTERVAL_S": "0.1", "RATING_RATING_PROCESS": "0"}).start()
    return server, Gateway(f"http://127.0.0.1:{_http_port(port_file)}")


def test_a_gateway_payment_through_rating_serve_delivers_its_receipt_once(tmp_path, sink):  # noqa: F811
    site, data_dir = society(tmp_path, sink), tmp_path / "data"
    data_dir.mkdir()
    rules = site.parent / "reminders.toml"  # a receipt is due at send_at of its day: 00:00 runs at any hour
    rules.write_text(rules.read_text().replace('send_at = "10:00"', 'send_at = "00:00"'))
    assert cli(site, data_dir, "bills", "issue", "--cycle", "2025-05") == 0
    assert cli(site, data_dir, "reminders", "contact", "A-0101", "--channel", "sms", "--address",
               "98123 45678", "--name", "Asha Rao") == 0
    assert cli(site, data_dir, "reminders", "consent", "A-0101", "in", "--channel", "sms") == 0
    assert sink.count == 0  # the bills' "issued" notices wait in the outbox for the server's relay
    paid = event("captured", amount_minor=PAID_MINOR, unit="A-0101")
    server, gateway = serve(tmp_path, site, data_dir)
    try:
        answer = gateway.post(paid)
        assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text
        receipt = answer.json()["receipt"]
        wait_for(lambda: any(r["template"] == "payment_received" for r in sink.requests))
        assert gateway.post(paid).json()["receipt"] == receipt  # the gateway's retry: the first result
        time.sleep(1.0)  # ten relay passes
        assert server.stop() == 0
        server, gateway = serve(tmp_path, site, data_dir)  # a restart sends nothing again
        time.sleep(1.0)
        assert server.stop() == 0
    finally:
        if server.proc.poll() is None:
            server.kill9()
    receipts = [r for r in sink.requests if r["template"] == "payment_received"]
    assert len(receipts) == 1 and sink.duplicates == 0, sink.requests
    [sent] = receipts
    assert (sent["to"], sent["language"]) == ("+919812345678", "en")
    assert sent["variables"]["bill_number"] == receipt
    assert sent["variables"]["amount_paid"] == "INR 1,500.00"
