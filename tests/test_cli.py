"""The command line end to end, on real files: exit codes, messages, outputs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from rating.cli import commands as cli
from rating.cli.commands import main

ROOT = Path(__file__).resolve().parent.parent

SITE = """
[site]
name = "Lakeview Apartments"
currency = "INR"
time_zone = "Asia/Kolkata"

[files]
tariffs = "tariffs.toml"
meters = "meters.csv"
accounts = "accounts.csv"
"""

TARIFFS = """
[[tariff]]
id = "ELEC"
unit = "kWh"
effective_from = 2025-01-01
fixed_charge = 50
[tariff.energy]
slabs = [{ upto = 100, price = 5 }, { price = 7 }]

[[tariff]]
id = "MAINT"
effective_from = 2025-01-01
fees = [{ name = "sinking_fund", amount = 400 }]
"""

METERS = "meter_id,account_id,tariff_id,mode\nE-1,A-1,ELEC,register\nE-2,A-2,ELEC,register\n"
ACCOUNTS = "account_id,name,tariff_id\nA-1,Flat 101 (Rao),MAINT\nA-2,Flat 102 (Iyer),\n"

# Local (IST) times; the CSV gives them with their offset.
READINGS = """meter_id,ts,value
E-1,2025-05-01T00:00:00+05:30,1000.0
E-2,2025-05-01T00:00:00+05:30,500
E-1,2025-05-15T00:00:00+05:30,1080.5
E-2,2025-05-15T00:00:00+05:30,520
E-1,2025-05-15T00:00:00+05:30,1080.5
E-9,2025-05-16T00:00:00+05:30,3
E-1,2025-06-01T00:00:00+05:30,1150.5
"""
# E-1: 150.5 kWh = 100 x 5 + 50.5 x 7 = 853.50, + 50 fixed = 903.50; A-1 also 400 sinking fund.
# E-2: 20 kWh x 5 = 100 + 50 fixed = 150.00.
TOTALS = {"A-1": Decimal("1303.50"), "A-2": Decimal("150.00")}


@pytest.fixture
def site(tmp_path) -> Path:
    (tmp_path / "site.toml").write_text(SITE)
    (tmp_path / "tariffs.toml").write_text(TARIFFS)
    (tmp_path / "meters.csv").write_text(METERS)
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    (tmp_path / "readings.csv").write_text(READINGS)
    return tmp_path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def totals(charges: pa.Table) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for row in charges.select(["account_id", "amount"]).to_pylist():
        result[row["account_id"]] = result.get(row["account_id"], Decimal(0)) + row["amount"]
    return result


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_rate_to_out_folder_writes_readable_parquet_and_prints_summary(site, capsys):
    code, out, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                         "--out", site / "results")
    assert code == 0, err
    assert err == ""  # stderr is no terminal under pytest: no progress line
    assert files_in(site / "results") == {"charges.parquet", "anomalies.parquet"}
    charges = pq.read_table(site / "results" / "charges.parquet")
    anomalies = pq.read_table(site / "results" / "anomalies.parquet")
    assert totals(charges) == TOTALS
    assert sorted(anomalies.column("code").to_pylist()) == ["duplicate", "unknown_meter"]
    assert "Lakeview Apartments: charges in INR, 2025-05-01 to 2025-05-31" in out
    assert "A-1  Flat 101 (Rao)" in out
    assert "1,303.50" in out and "Site total (2 accounts): INR 1,453.50" in out
    assert "Anomalies: duplicate 1, unknown_meter 1" in out
    assert "Unknown meters: E-9 1 readings" in out


@pytest.mark.parametrize(("fmt", "suffix"), [("csv", ".csv"), ("arrow", ".arrow")])
def test_format_option_with_out(site, capsys, fmt, suffix):
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--out", site / "r", "--format", fmt, "--no-summary")
    assert code == 0, err
    assert files_in(site / "r") == {f"charges{suffix}", f"anomalies{suffix}"}


def test_charges_and_anomalies_files_take_their_format_from_the_suffix(site, capsys):
    code, out, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                         "--charges", site / "c.csv", "--anomalies", site / "a.arrow",
                         "--no-summary")
    assert code == 0, err
    assert out == ""
    names = pacsv.read_csv(site / "c.csv").column_names
    text = pacsv.read_csv(site / "c.csv", convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}))
    from_csv: dict[str, Decimal] = {}
    for row in text.to_pylist():
        from_csv[row["account_id"]] = from_csv.get(row["account_id"], 0) + Decimal(row["amount"])
    assert from_csv == TOTALS
    with pa.memory_map(str(site / "a.arrow")) as source:
        anomalies = ipc.open_file(source).read_all()
    assert anomalies.column("row").to_pylist() == [4, 5]  # 0-based positions in the input
    assert files_in(site) == {"site.toml", "tariffs.toml", "meters.csv", "accounts.csv",
                              "readings.csv", "c.csv", "a.arrow"}


def test_only_charges(site, capsys):
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                     "--charges", site / "c.parquet", "--no-summary")
    assert code == 0
    assert totals(pq.read_table(site / "c.parquet")) == TOTALS
    assert not (site / "anomalies.parquet").exists()


def test_several_readings_files_in_order_and_every_format(site, capsys):
    table = pacsv.read_csv(site / "readings.csv", convert_options=pacsv.ConvertOptions(
        column_types={"meter_id": pa.string(), "ts": pa.timestamp("s", tz="UTC")}))
    pq.write_table(table.slice(0, 3), site / "part1.parquet")
    with ipc.new_stream(site / "part2.arrows", table.schema) as writer:
        writer.write_table(table.slice(3, 2))
    with ipc.new_file(site / "part3.arrow", table.schema) as writer:
        writer.write_table(table.slice(5))
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "part1.parquet",
                       site / "part2.arrows", site / "part3.arrow", "--charges",
                       site / "c.parquet", "--anomalies", site / "a.parquet", "--no-summary")
    assert code == 0, err
    assert totals(pq.read_table(site / "c.parquet")) == TOTALS
    assert pq.read_table(site / "a.parquet").column("row").to_pylist() == [4, 5]


def test_summary_limits_accounts(site, capsys):
    code, out, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--accounts", "1")
    assert code == 0
    assert "A-1  Flat 101" in out and "A-2  Flat 102" not in out
    assert "... 1 more accounts, totalling 150.00" in out


# ------------------------------------------------------------------ errors


def assert_one_error_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rating: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


def test_null_timestamp_is_exit_2_one_line_and_no_outputs(site, capsys):
    (site / "readings.csv").write_text(READINGS + "E-1,,1200\n")
    before = files_in(site)
    code, out, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                         "--out", site / "results")
    assert code == 2
    assert_one_error_line(err, "readings.csv", "row 8", "ts is null")
    assert out == ""
    assert files_in(site) == before  # not even the --out folder


def write_ipc(path: Path, table: pa.Table) -> None:
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)


def unchecked_dictionary(indices: list[int], values: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(values), safe=False)


@pytest.mark.parametrize("bad_index", [-1, 2])
def test_a_dictionary_index_outside_the_dictionary_prices_nothing(site, capsys, bad_index):
    """-1 once priced E-2's readings against E-1 (numpy's index from the end)."""
    ts = pa.array([f"2025-05-{d:02d}T00:00:00" for d in (1, 1, 20, 20)]).cast(pa.timestamp("us"))
    table = pa.table({"meter_id": unchecked_dictionary([0, 1, 0, bad_index], ["E-1", "E-2"]),
                      "ts": ts, "value": pa.array([100.0, 100.0, 200.0, 300.0])})
    write_ipc(site / "readings.arrow", table)
    before = files_in(site)
    code, out, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.arrow",
                         "--out", site / "results")
    assert code == 2 and out == ""
    assert_one_error_line(err, f"{site / 'readings.arrow'} rows 1-4, column meter_id",
                          "out of bounds")
    assert files_in(site) == before


def test_a_registry_file_with_a_bad_dictionary_index_is_exit_2(site, capsys):
    meters = pa.table({"meter_id": unchecked_dictionary([0, 7], ["E-1", "E-2"]),
                       "account_id": ["A-1", "A-2"], "tariff_id": ["ELEC", "ELEC"]})
    write_ipc(site / "meters.arrow", meters)
    (site / "site.toml").write_text(SITE.replace("meters.csv", "meters.arrow"))
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv")
    assert code == 2
    assert_one_error_line(err, f"{site / 'meters.arrow'}, column meter_id", "out of bounds")


def test_unknown_tariff_is_exit_2(site, capsys):
    (site / "meters.csv").write_text(METERS + "E-3,A-2,GAS,register\n")
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv")
    assert code == 2
    assert_one_error_line(err, f"{site / 'meters.csv'} row 3", "meter 'E-3' uses unknown tariff 'GAS'")


def test_unknown_meters_error_policy(site, capsys):
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--unknown-meters", "error", "--out", site / "results")
    assert code == 2
    assert_one_error_line(err, "row 6", "unknown meter 'E-9'")
    assert not (site / "results").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--out", "o", "--charges", "c.parquet"], ["either --out DIR or --charges"]),
        (["--charges", "c.txt"], ["c.txt", "cannot tell the format"]),
        (["--charges", "nowhere/c.parquet"], ["nowhere", "folder does not exist"]),
        (["--accounts", "-1"], ["--accounts must be 0 or more"]),
    ],
)
def test_bad_output_options_fail_before_any_work(site, capsys, monkeypatch, extra, fragments):
    monkeypatch.chdir(site)
    before = files_in(site)
    code, _, err = run(capsys, "rate", "--site", "site.toml", "readings.csv", *extra)
    assert code == 2
    assert_one_error_line(err, *fragments)
    assert files_in(site) == before


def test_missing_and_unreadable_readings(site, capsys):
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "nope.parquet")
    assert code == 2
    assert_one_error_line(err, "nope.parquet", "file not found")
    (site / "bad.parquet").write_bytes(b"garbage")
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "bad.parquet")
    assert code == 2
    assert_one_error_line(err, "bad.parquet", "cannot read parquet file")


def test_missing_site_file(site, capsys):
    code, _, err = run(capsys, "rate", "--site", site / "other.toml", site / "readings.csv")
    assert code == 2
    assert_one_error_line(err, "other.toml", "cannot read site file")


def test_a_failed_write_leaves_existing_outputs_untouched_and_no_temporaries(site, capsys):
    (site / "c.parquet").write_bytes(b"old charges")
    (site / "a.parquet").mkdir()  # cannot be replaced by a file
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--charges", site / "c.parquet", "--anomalies", site / "a.parquet")
    assert code == 2
    assert_one_error_line(err, "a.parquet", "is a folder")
    assert (site / "c.parquet").read_bytes() == b"old charges"
    assert not [p for p in site.iterdir() if p.name.endswith(".tmp")]


def test_write_failure_midway_removes_created_folder(site, capsys, monkeypatch):
    import rating.cli.output

    def explode(table, path, fmt):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(rating.cli.output, "_write", explode)
    code, _, err = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--out", site / "deep" / "results")
    assert code == 2
    assert_one_error_line(err, "No space left on device")
    assert not (site / "deep").exists()


def test_a_full_disk_names_the_output_file_and_leaves_nothing(site):
    output = "charges.parquet"
    # A real failed write in a child process limited to 100-byte files (RLIMIT_FSIZE;
    # SIGXFSZ ignored, so the write fails with EFBIG as a full disk fails with ENOSPC).
    child = ("import resource, signal, sys\n"
             "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
             "resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))\n"
             "from rating.cli.commands import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", child, "rate", "--site", "site.toml", "readings.csv",
                           "--charges", output, "--no-summary"],
                          capture_output=True, text=True, env=env, cwd=site, timeout=60)
    assert done.returncode == 2, done.stderr
    assert_one_error_line(done.stderr, f"rating: error: {output}: File too large")
    assert not (site / output).exists()
    assert not [p for p in site.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ help and entry points


def test_help_documents_subcommands_and_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "rate" in out and "demo" in out and "examples:" in out
    with pytest.raises(SystemExit):
        main(["rate", "--help"])
    out = capsys.readouterr().out
    for option in ("--site", "--out", "--charges", "--anomalies", "--format", "--unknown-meters",
                   "--no-summary", "examples:", "exit codes"):
        assert option in out


def test_no_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_subcommand_registry_rejects_duplicates_and_accepts_new_commands(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SUBCOMMANDS", dict(cli.SUBCOMMANDS))

    @cli.subcommand("hello", help="say hello", description="Say hello.",
                    arguments=lambda p: p.add_argument("--name", default="world"))
    def hello(args):
        print(f"hello {args.name}")
        return 0

    assert main(["hello", "--name", "Pune"]) == 0
    assert capsys.readouterr().out == "hello Pune\n"
    with pytest.raises(ValueError, match="registered twice"):
        cli.subcommand("hello", help="", description="", arguments=lambda p: None)(hello)


def test_python_dash_m_rating_runs_the_cli(site):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "rating", "rate", "--site", str(site / "site.toml"),
         str(site / "readings.csv"), "--unknown-meters", "error"],
        capture_output=True, text=True, env=env, cwd=site, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("rating: error: ") and "unknown meter 'E-9'" in done.stderr
    version = subprocess.run([sys.executable, "-m", "rating", "--version"], capture_output=True,
                             text=True, env=env, timeout=60)
    assert version.stdout.strip() == "rating 0.1.0"


# ------------------------------------------------------------------ progress, money


class FakeTerminal:
    def __init__(self, tty: bool):
        self.tty = tty
        self.text = ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_progress_draws_after_the_delay_and_erases_itself():
    from rating.cli.progress import Progress

    now = [0.0]
    terminal = FakeTerminal(tty=True)
    with Progress(total=4_000_000, stream=terminal, clock=lambda: now[0]) as progress:
        progress(1_000_000)
        assert terminal.text == ""  # short runs print nothing
        now[0] = 2.0
        progress(1_000_000)
        assert "50%" in terminal.text and "2M/4M readings" in terminal.text
        assert "1M readings/s" in terminal.text and "2 s left" in terminal.text
        now[0] = 2.1
        progress(1)  # within the redraw interval: no new line
        assert terminal.text.count("\r") == 1
    assert terminal.text.endswith("\r")
    assert progress.done == 2_000_001


def test_progress_is_silent_when_stderr_is_no_terminal_and_without_total():
    from rating.cli.progress import Progress

    now = [0.0]
    pipe = FakeTerminal(tty=False)
    progress = Progress(total=10, stream=pipe, clock=lambda: now[0])
    now[0] = 5.0
    progress.update(10)
    progress.close()
    assert pipe.text == ""
    unknown = Progress(total=None, stream=FakeTerminal(tty=True), clock=lambda: now[0])
    now[0] = 7.0
    unknown.update(1500)
    assert unknown.line().startswith("1.5k readings")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0", "INR", "0.00"),
        ("999.5", "INR", "999.50"),
        ("1234.5", "INR", "1,234.50"),
        ("123456.78", "INR", "1,23,456.78"),
        ("-12345678.9", "INR", "-1,23,45,678.90"),
        ("12345678.9", "EUR", "12,345,678.90"),
        ("-0.01", "USD", "-0.01"),
        ("99999999999999999.99", "INR", "99,99,99,99,99,99,99,999.99"),
    ],
)
def test_money_is_formatted_exactly_with_grouping(amount, currency, expected):
    from rating.cli.summary import format_money

    assert format_money(Decimal(amount), 2, currency) == expected


def test_money_without_minor_unit():
    from rating.cli.summary import format_money

    assert format_money(Decimal("1234567"), 0, "JPY") == "1,234,567"


def test_outputs_get_ordinary_permissions_and_keep_existing_ones(site, capsys):
    (site / "a.parquet").write_bytes(b"old")
    (site / "a.parquet").chmod(0o640)
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                     "--charges", site / "c.parquet", "--anomalies", site / "a.parquet")
    assert code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (site / "c.parquet").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (site / "a.parquet").stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ output destinations


def read_fifo_in_background(path: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    reader = threading.Thread(target=read, daemon=True)  # blocks until a writer opens the FIFO
    reader.start()
    return reader, received


def test_a_fifo_is_written_through_and_stays_a_fifo(site, capsys):
    fifo = site / "charges.csv"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                     "--charges", fifo, "--anomalies", site / "anomalies.csv")
    assert code == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # once renamed over: a regular file
    reader.join(timeout=30)
    exact = pacsv.ConvertOptions(column_types={"amount": pa.decimal128(18, 2)})
    assert totals(pacsv.read_csv(pa.BufferReader(received[0]), convert_options=exact)) == TOTALS
    assert pacsv.read_csv(site / "anomalies.csv").num_rows == 2
    assert files_in(site) == {"site.toml", "tariffs.toml", "meters.csv", "accounts.csv", "readings.csv",
                              "charges.csv", "anomalies.csv"}  # no temporary left


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_a_device_node_is_written_through_and_stays_a_device(site, capsys):
    """As root, --charges /dev/null once replaced the device with a regular file
    (shown on a copy of /dev/null's node, never on the machine's own)."""
    null = site / "null.parquet"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv", "--charges", null)
    assert code == 0
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.lstat(null).st_rdev == os.makedev(1, 3)


def test_a_symlink_stays_a_link_and_its_target_is_replaced(site, capsys):
    (site / "store").mkdir()
    target = site / "store" / "may-charges.parquet"
    target.write_bytes(b"last month")
    link = site / "charges.parquet"
    link.symlink_to(Path("store") / "may-charges.parquet")
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv", "--charges", link)
    assert code == 0
    assert link.is_symlink() and os.readlink(link) == str(Path("store") / "may-charges.parquet")
    assert totals(pq.read_table(target)) == TOTALS
    assert sorted(p.name for p in (site / "store").iterdir()) == ["may-charges.parquet"]


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink", "hard link"])
def test_one_file_given_twice_is_an_error_before_anything_is_written(site, capsys, monkeypatch, spelling):
    monkeypatch.chdir(site)
    (site / "sub").mkdir()
    (site / "out.csv").write_text("keep me")
    other = {"same": "out.csv", "dotted": "sub/../out.csv", "symlink": "alias.csv",
             "hard link": "twin.csv"}[spelling]
    if spelling == "symlink":
        (site / "alias.csv").symlink_to("out.csv")
    if spelling == "hard link":
        os.link(site / "out.csv", site / "twin.csv")
    before = files_in(site)
    code, out, err = run(capsys, "rate", "--site", "site.toml", "readings.csv",
                         "--charges", "out.csv", "--anomalies", other)
    assert code == 2 and out == ""
    assert_one_error_line(err, other, "given twice", "one file cannot hold two tables")
    assert files_in(site) == before and (site / "out.csv").read_text() == "keep me"


def test_write_tables_refuses_one_file_twice(tmp_path):
    from rating.cli.output import write_tables
    from rating.errors import InputError

    table = pa.table({"x": [1]})
    with pytest.raises(InputError, match="given twice"):
        write_tables([(table, tmp_path / "t.csv", "csv"), (table, tmp_path / "." / "t.csv", "csv")])
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the reading window


def test_now_sets_the_future_bound_of_the_reading_window(site, capsys):
    """Readings up to --now plus the site's tolerance (24 hours) are priced;
    a later one is a future_reading and never E-1's last reading."""
    (site / "readings.csv").write_text(READINGS.replace("E-9,2025-05-16T00:00:00+05:30,3\n",
                                                        "E-1,2025-06-02T00:00:01+05:30,99999\n"))
    code, out, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                       "--now", "2025-06-01T00:00:00+05:30", "--out", site / "results")
    assert code == 0
    anomalies = pq.read_table(site / "results" / "anomalies.parquet")
    assert anomalies["code"].to_pylist() == ["duplicate", "future_reading"]
    assert totals(pq.read_table(site / "results" / "charges.parquet")) == TOTALS
    assert "future_reading" in out


def test_without_now_the_window_ends_a_day_after_the_wall_clock(site, capsys):
    import datetime as dt

    ahead = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (site / "readings.csv").write_text(READINGS + f"E-2,{ahead},530\n")
    code, _, _ = run(capsys, "rate", "--site", site / "site.toml", site / "readings.csv",
                     "--anomalies", site / "anomalies.csv")
    assert code == 0
    assert pacsv.read_csv(site / "anomalies.csv")["code"].to_pylist()[-1] == "future_reading"


def test_a_now_that_is_no_date_is_a_usage_error(site, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["rate", "--site", str(site / "site.toml"), str(site / "readings.csv"), "--now", "soon"])
    assert exit_.value.code == 2
    assert "not an ISO 8601 date and time: 'soon'" in capsys.readouterr().err
