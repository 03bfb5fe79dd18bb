"""rating bills run|issue|show and rating dues import, on the demo society:
in process through rating.cli.commands.main on the SQLite file, once as a real
process on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rating.cli.commands import main
from rating.cli.demo import generate_demo
from tests.servers import NEEDS_SERVERS

pytest_plugins = ["tests.prepaid_backends"]  # postgres_server
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site_file(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5).site_file


@pytest.fixture(scope="module")
def total(site_file, tmp_path_factory):
    """The May charges of every bill, as the API drafts them, in rupees, and their anomalies."""
    from rating.billing.inputs import load_site_billing, run_cycle
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.billing.money import major
    from rating.billing.run import RunInputs, draft_cycle
    from tests.billing_drafts import run

    society = load_site_billing(site_file)
    inputs = RunInputs(run_cycle(society.site_id, "2025-05", society.billing), society.billing,
                       society.numbering, society.units())
    path = tmp_path_factory.mktemp("empty") / "ledger.db"
    drafts = run(lambda: SqliteDuesLedger(path), lambda ledger: draft_cycle(ledger, inputs))
    return major(sum(d.charges_minor for d in drafts), 2), sum(len(d.anomalies) for d in drafts)


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_then_issue_once_then_show_and_a_redraft_is_refused(site_file, total, tmp_path, capsys):
    total, anomalies = total
    ledger = ["--site", site_file, "--ledger", tmp_path / "ledger.db", "--actor", "treasurer"]
    code, out, _ = cli(capsys, "bills", "run", "--cycle", "2025-05", "--accounts", "1", *ledger)
    assert code == 0 and "... 32 more bills" in out
    assert out.endswith(f"33 bills, {total} this cycle, {total} due with arrears, {anomalies} anomalies; "
                        "nothing written\n")
    code, first, _ = cli(capsys, "bills", "issue", "--cycle", "2025-05", *ledger)
    assert code == 0 and first.startswith("issued cycle 2025-05-01..2025-05-31: 33 bills B/25-26/000001 .. "
                                          f"B/25-26/000033, {total} posted")
    code, again, _ = cli(capsys, "bills", "issue", "--cycle", "2025-05", *ledger)
    assert code == 0 and again == first.replace("\n", " (already issued: first result)\n")
    code, out, err = cli(capsys, "bills", "run", "--cycle", "2025-05", *ledger)
    assert code == 2 and out == ""
    assert err.startswith("rating: error: cycle 2025-05-01..2025-05-31: issued already")
    code, out, _ = cli(capsys, "bills", "show", "B/25-26/000002", *ledger)
    assert code == 0
    assert out.startswith("bill B/25-26/000002  account A-0102  issued 2025-06-01  due 2025-06-16")
    assert "by treasurer [#1]" in out and "maintenance" in out
    code, out, _ = cli(capsys, "bills", "show", "--cycle", "2025-05", *ledger)
    assert code == 0 and out.endswith(f"33 documents, {total} posted\n")
    code, _, err = cli(capsys, "bills", "show", "B/25-26/000999", *ledger)
    assert code == 2 and "no bill or note 'B/25-26/000999'" in err


def test_dues_import_once_and_a_bad_file_changes_nothing(site_file, tmp_path, capsys):
    ledger = ["--site", site_file, "--ledger", tmp_path / "ledger.db"]
    good = tmp_path / "arrears.csv"
    good.write_text("unit,head,amount,due_date,note\nA-0101,maintenance,4500,2025-03-31,opening\n"
                    "A-0102,water,125.50,2025-04-15,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("unit,head,amount,due_date\nA-0101,maintenance,10,2025-03-31\nZ-9,water,1,2025-04-15\n",
                   encoding="utf-8")
    code, _, err = cli(capsys, "dues", "import", bad, *ledger)
    assert code == 2 and err == (f"rating: error: {bad} row 3 column unit: unknown unit 'Z-9': not an "
                                 "account of the site; nothing imported\n")
    code, out, _ = cli(capsys, "dues", "import", good, *ledger)
    assert code == 0 and out.startswith("imported 2 dues of arrears.csv, 4625.50 in all [#1]")
    code, out, _ = cli(capsys, "dues", "import", good, *ledger)
    assert code == 0 and out.endswith("[#1] (already imported: first result)\n")
    code, out, _ = cli(capsys, "bills", "run", "--cycle", "2025-05", "--accounts", "1", *ledger)
    assert "maintenance              arrears          4500.00" in out


def test_the_verbs_explain_themselves(capsys):
    for verb in ("bills", "dues"):
        with pytest.raises(SystemExit) as done:
            main([verb, "--help"])
        assert done.value.code == 0 and "examples:" in capsys.readouterr().out
    code, _, err = cli(capsys, "bills", "issue", "--site", "nowhere.toml")
    assert code == 2 and "needs --cycle" in err


@NEEDS_SERVERS
def test_issue_on_postgres_from_a_real_process(site_file, postgres_server, tmp_path):
    args = [sys.executable, "-m", "rating", "bills", "issue", "--site", str(site_file), "--cycle", "2025-05",
            "--postgres", postgres_server.dsn, "--postgres-schema", "cli_bills"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    again = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert first.returncode == 0 and "33 bills B/25-26/000001 .. B/25-26/000033" in first.stdout, first.stderr
    assert "(already issued: first result)" in again.stdout
    assert not (tmp_path / "rating-data").exists()  # the SQLite default was not touched


def test_run_with_the_cycles_readings_bills_the_metered_heads(site_file, total, tmp_path, capsys):
    readings = site_file.parent / "readings.parquet"
    ledger = ["--site", site_file, "--ledger", tmp_path / "ledger.db"]
    code, out, err = cli(capsys, "bills", "run", "--cycle", "2025-05", "--accounts", "0",
                         "--readings", readings, *ledger)
    assert code == 0, err
    summary = out.splitlines()[-1]
    assert summary.startswith("draft: 33 bills, ") and summary.endswith(" 0 anomalies; nothing written")
    assert float(summary.split()[3]) > float(total[0])  # electricity and water on top of the fixed heads
