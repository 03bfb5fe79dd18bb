"""The command-line verbs against a real `rating serve` process (embedded default)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from grpc_health.v1 import health_pb2

from rating.cli.prepaid import _minor
from rating.client.calls import RatingClient
from rating.errors import ConfigError, InputError
from rating.server.settings import load_settings
from tests.prepaid_site import readings, write_site
from tests.test_prepaid_crash import ServeProcess

ROOT = Path(__file__).resolve().parent.parent


def rating(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rating", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.mark.parametrize("amount, minor", [("500.00", 50_000), ("-35.5", -3_550), (" 1.5e2 ", 15_000),
                                           ("90071992547409.91", 2**53 - 1), ("0e-999999999", 0)])
def test_amounts_are_exact_minor_units(amount, minor):
    assert _minor(amount, 2, where="AMOUNT") == minor


@pytest.mark.parametrize("amount, reason", [
    ("1e30", "out of range"), ("90071992547409.92", "out of range"), ("1e999999999", "out of range"),
    ("sNaN", "not an amount"), ("NaN", "not an amount"), ("-Infinity", "not an amount"),
    ("ten", "not an amount"), ("12.345", "more decimals"), ("1e-999999999", "more decimals"),
    ("1.00000000000000000000000000000001", "more decimals"),  # past Decimal's 28 digits
])
def test_bad_amounts_are_one_clean_error(amount, reason):
    with pytest.raises(InputError) as error:
        _minor(amount, 2, where="AMOUNT")
    assert error.value.where == "AMOUNT" and reason in error.value.message


def test_serve_with_no_flags_runs_the_embedded_default(tmp_path):
    server = ServeProcess(tmp_path, []).start()  # only --port 0 and --port-file: nothing else configured
    try:
        with RatingClient(server.target) as client:
            assert client.health() == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert server.stop() == 0
    assert (tmp_path / "rating-data" / "ledger.db").exists()
    log = (tmp_path / "serve.log").read_text()
    assert "serving address=127.0.0.1:" in log and "store=memory ledger=sqlite" in log


def test_topup_balance_stream_and_events_verbs(tmp_path):
    site = write_site(tmp_path / "site", flats=3)
    pq.write_table(readings(3, 30), tmp_path / "day.parquet")
    server = ServeProcess(tmp_path, ["--site", str(site), "--log-format", "json"]).start()
    at = ["--server", server.target]
    try:
        first = rating("topup", "F0001", "electricity", "150.50", "--key", "RCPT-1", "--method", "cash", *at,
                       cwd=tmp_path)
        again = rating("topup", "F0001", "electricity", "150.50", "--key", "RCPT-1", "--method", "cash", *at,
                       cwd=tmp_path)
        changed = rating("topup", "F0001", "electricity", "99", "--key", "RCPT-1", *at, cwd=tmp_path)
        streamed = rating("stream", "day.parquet", "--batch-rows", "25", *at, cwd=tmp_path)
        restreamed = rating("stream", "day.parquet", "--batch-rows", "25", *at, cwd=tmp_path)
        balance = rating("balance", "F0001", *at, cwd=tmp_path)
        events = rating("events", "--once", "--type", "CUT_OFF", *at, cwd=tmp_path)
        refund = rating("refund", "F0001", "electricity", "100000", "--key", "R-9", *at, cwd=tmp_path)
        unknown = rating("balance", "NOPE", *at, cwd=tmp_path)
    finally:
        assert server.stop() == 0
    assert first.returncode == 0 and "balance 150.50 ok" in first.stdout, first.stderr
    assert again.returncode == 0 and "already recorded" in again.stdout
    assert changed.returncode == 2 and "ALREADY_EXISTS (IDEMPOTENCY_CONFLICT)" in changed.stderr
    assert streamed.returncode == 0, streamed.stderr
    assert "8 batches (0 already applied)" in streamed.stderr and "CUT_OFF" in streamed.stdout
    assert "8 batches (8 already applied)" in restreamed.stderr  # same file again: nothing applied twice
    assert balance.returncode == 0 and "electricity" in balance.stdout and "water" in balance.stdout
    assert events.returncode == 0 and events.stdout and all(
        line.startswith("CUT_OFF ") and "cursor=" in line for line in events.stdout.splitlines())
    assert refund.returncode == 2 and "INSUFFICIENT_BALANCE" in refund.stderr
    assert unknown.returncode == 2 and "NOT_FOUND" in unknown.stderr


def test_settings_come_from_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "rating.toml"
    config.write_text('[server]\nport = 6000\nredis_url = "redis://file"\ntokens = ["a", "b"]\n')
    settings = load_settings(file=config, env={"RATING_PORT": "7000", "RATING_GRACE_S": "2.5"},
                             flags={"port": 8000, "postgres_dsn": None})
    assert (settings.port, settings.redis_url, settings.tokens, settings.grace_s) == (
        8000, "redis://file", ("a", "b"), 2.5)
    assert (load_settings(env={}).redis_url, load_settings(env={}).postgres_dsn) == ("", "")
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nportt = 1\n")
    with pytest.raises(ConfigError, match="portt"):
        load_settings(file=bad, env={})
    with pytest.raises(ConfigError, match="tls_key"):
        load_settings(env={"RATING_TLS_CERT": "x.pem"})


HOSTILE_SERVER_TABLES = [
    (b"server = 5\n", "[server]", "must be a table"),
    (b'[server]\nport = "6000"\n', "[server].port", "must be an integer"),
    (b"[server]\nport = 1.5\n", "[server].port", "must be an integer"),
    (b"[server]\nport = true\n", "[server].port", "must be an integer"),
    (b"[server]\nhost = 5\n", "[server].host", "must be a string"),
    (b"[server]\ntokens = [1, 2]\n", "[server].tokens", "must be an array of strings"),
    (b"[server]\ngrace_s = \"soon\"\n", "[server].grace_s", "must be a number"),
    (b"[server]\nhost = \"\xff\xfe\"\n", "", "UTF-8"),
]


@pytest.mark.parametrize(("content", "place", "message"), HOSTILE_SERVER_TABLES)
def test_a_hostile_server_table_is_a_config_error_naming_the_key(tmp_path, content, place, message):
    config = tmp_path / "rating.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(file=config, env={})
    assert err.value.where is not None and err.value.where.startswith(str(config) + place)
