"""rating report defaulters|kpis|receipts|forecast on a year of the history
generator's bills and payments, written under the demo society's name: the
printed tables, the three export formats, and the user's mistakes."""

from __future__ import annotations

import csv

import openpyxl
import pyarrow.parquet as pq
import pytest

from rating.billing.ledger_sqlite import SqliteDuesLedger
from rating.cli.commands import main
from rating.cli.demo import generate_demo
from rating.config.loader import load_config
from rating.reports import ageing, facts
from rating.reports.history import make_history
from tests.billing_drafts import run


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    site_file = generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5).site_file
    path = tmp_path_factory.mktemp("data") / "ledger.db"
    site_id = load_config(site_file).site.name

    async def go(ledger):
        history = await make_history(ledger, site_id=site_id, flats=12, cycles=12)
        return history, await facts.load(ledger, site_id)

    history, found = run(lambda: SqliteDuesLedger(path), go)
    return site_file, path, history, found


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_defaulters_print_and_export_the_same_rows_in_three_formats(society, tmp_path, capsys):
    site_file, path, history, found = society
    where = ["--site", site_file, "--ledger", path, "--as-of", history.end]
    expected = ageing.ageing(found, history.end)
    code, out, _ = cli(capsys, "report", "defaulters", *where)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["account_id", "not_yet_due_minor", "d0_30_minor"]
    assert len(out.splitlines()) == expected.num_rows + 2
    assert out.splitlines()[-1].startswith(f"{expected.num_rows} accounts as of {history.end}; overdue "
                                           f"{ageing.totals(expected)['overdue_minor']}")
    for suffix in ("csv", "xlsx", "parquet"):
        target = tmp_path / f"defaulters.{suffix}"
        code, out, _ = cli(capsys, "report", "defaulters", *where, "--out", target)
        assert code == 0 and out.startswith(f"wrote {expected.num_rows} rows to {target}")
        if suffix == "csv":
            with target.open() as f:
                got = [int(r["overdue_minor"]) for r in csv.DictReader(f)]
        elif suffix == "xlsx":
            sheet = openpyxl.load_workbook(target).active
            got = [r[6] for r in sheet.iter_rows(min_row=2, values_only=True)]
        else:
            got = pq.read_table(target)["overdue_minor"].to_pylist()
        assert got == expected["overdue_minor"].to_pylist()


def test_kpis_receipts_and_forecast_with_its_backtest(society, capsys):
    site_file, path, history, _ = society
    where = ["--site", site_file, "--ledger", path, "--as-of", history.end]
    code, out, _ = cli(capsys, "report", "kpis", *where, "--grace-days", "5")
    assert code == 0 and len(out.splitlines()) == 12 + 2
    assert out.splitlines()[-1].startswith("trend per cycle")
    code, out, _ = cli(capsys, "report", "receipts", *where)
    assert code == 0 and len(out.splitlines()) == 12 * 4 + 2
    code, out, _ = cli(capsys, "report", "forecast", *where, "--cycles-ahead", "3")
    assert code == 0 and len(out.splitlines()) == 3 * 5 + 2
    code, out, _ = cli(capsys, "report", "forecast", *where, "--backtest")
    assert code == 0 and "back-test of 6 cycles: mean error 0." in out.splitlines()[-1]


@pytest.mark.parametrize(("args", "message"), [
    (["--as-of", "2025-13-01"], "--as-of: a day is YYYY-MM-DD, got '2025-13-01'"),
    (["--account", "Z-999"], "account: no account 'Z-999' in the dues ledger of site"),
    (["--out", "report.txt"], "--out: write a report as .csv, .xlsx, .parquet; got 'report.txt'"),
    (["--grace-days", "-1"], "--grace-days: give 0..366 days, got -1"),
])
def test_mistakes_are_one_line_naming_the_option_and_nothing_is_written(society, tmp_path, capsys, args,
                                                                         message):
    site_file, path, _, _ = society
    code, out, err = cli(capsys, "report", "defaulters", "--site", site_file, "--ledger", path, *args)
    assert code == 2 and err.startswith(f"rating: error: {message}") and "Traceback" not in err
    assert not (tmp_path / "report.txt").exists()


def test_an_unknown_site_file_and_an_empty_ledger(society, tmp_path, capsys):
    site_file, _, _, _ = society
    code, _, err = cli(capsys, "report", "kpis", "--site", tmp_path / "missing.toml")
    assert code == 2 and "missing.toml" in err
    code, out, err = cli(capsys, "report", "defaulters", "--site", site_file, "--ledger", tmp_path / "new.db")
    assert code == 0 and "has no bills in the ledger" in err and out.splitlines()[-1].startswith("0 accounts")
