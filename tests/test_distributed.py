"""Rating a bucketed dataset on a real Dask LocalCluster (two worker processes)
equals rate() in one process, line for line; re-rating writes the changes."""

import datetime as dt
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rating.cli import partition as partition_cli
from rating.cli.commands import main
from rating.cli.demo import generate_demo
from rating.config.loader import load_config
from rating.distributed import partition_readings, rate_dataset, rate_readings, read_results
from rating.distributed.groups import group_sets
from rating.distributed.partition import account_shards
from rating.engine import rate
from rating.errors import InputError, UnknownMeterError

distributed = pytest.importorskip("distributed")  # a test dependency: CI installs it
pytestmark = pytest.mark.cluster

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  local_directory=tmp_path_factory.mktemp("dask")) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    """The demo society, small: 8 flats, 19 meters, a month of 15-minute readings,
    faults of every kind, lift groups per tower and one common-area group over all."""
    return generate_demo(tmp_path_factory.mktemp("society"), towers=2, floors=2, flats_per_floor=2)


@pytest.fixture(scope="module")
def config(society):
    return load_config(society.site_file)


@pytest.fixture(scope="module")
def dataset(society, config, tmp_path_factory):
    out = tmp_path_factory.mktemp("buckets") / "readings"
    partition_readings(society.readings_file, config=config, out=out, batch_rows=4096)
    return out


def assert_same_as_rate(results: dict, expected) -> None:
    assert results["charges"].equals(expected.charges)
    assert results["anomalies"].equals(expected.anomalies)
    if expected.apportionment is not None:
        assert results["apportionment"].equals(expected.apportionment)


def test_dataset_with_groups_equals_rate(client, society, config, dataset, tmp_path):
    expected = rate(society.readings_file, config=config, now=NOW)
    run = rate_dataset(config, dataset, client, out=tmp_path / "out", now=NOW)
    assert expected.charges.num_rows > 100 and expected.anomalies.num_rows > 5
    assert_same_as_rate(read_results(tmp_path / "out"), expected)
    assert run.readings == society.readings and run.lines("charges") == expected.charges.num_rows


def test_dataset_without_groups_equals_rate_one_task_per_bucket(client, society, config, dataset, tmp_path):
    plain = replace(config, groups=None)
    expected = rate(society.readings_file, config=plain, now=NOW)
    run = rate_dataset(plain, dataset, client, out=tmp_path / "out", now=NOW)
    buckets = {p.name.removeprefix("shard=") for p in dataset.glob("shard=*")}
    assert sorted(t.task for t in run.tasks) == sorted(f"shard-{b}" for b in buckets)
    assert len(buckets) > 2 and "unknown" in buckets
    assert_same_as_rate(read_results(tmp_path / "out"), expected)


def test_groups_spanning_buckets_are_split_over_all_their_totals(client, society, config, dataset, tmp_path):
    """The common-area group's members sit in several buckets; splitting it in
    each bucket alone (rate() per bucket) gives other charges, the group step
    does not."""
    (common,) = [s for s in group_sets(config) if any(g.group_id == "common-areas" for g in s.groups)]
    shards = {int(account_shards(config)[i]) for i, m in enumerate(config.registry.meters)
              if m.account_id in common.accounts}
    assert len(shards) > 2
    expected = rate(society.readings_file, config=config, now=NOW)
    per_bucket = [rate([str(f) for f in sorted(folder.glob("*.parquet"))], config=config, now=NOW)
                  for folder in sorted(dataset.glob("shard=*"))]
    naive = pa.concat_tables([r.charges for r in per_bucket]).sort_by("account_id")
    assert not naive.equals(expected.charges)
    rate_dataset(config, dataset, client, out=tmp_path / "out", now=NOW)
    assert read_results(tmp_path / "out")["charges"].equals(expected.charges)


def test_readings_not_bucketed_yet_are_partitioned_first(client, society, config, tmp_path):
    csv = tmp_path / "readings.csv"
    table = pq.read_table(society.readings_file)
    pa.csv.write_csv(table, csv)
    expected = rate([str(csv), str(society.readings_file)], config=config, now=NOW)
    rate_readings([csv, society.readings_file], config=config, client=client, out=tmp_path / "out", now=NOW)
    assert_same_as_rate(read_results(tmp_path / "out"), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "readings.csv"]  # scratch removed


def _raised_tariff(society, tmp_path):
    """The society with the second electricity slab dearer: 10.29 -> 10.59 a kWh (the 2025 order)."""
    folder = tmp_path / "raised"
    folder.mkdir()
    for source in society.folder.iterdir():
        if source.is_file() and source.suffix in (".toml", ".csv"):
            text = source.read_text(encoding="utf-8")
            if source.name == "tariffs.toml":
                assert "{ upto = 300, price = 10.29 }" in text
                text = text.replace("{ upto = 300, price = 10.29 }", "{ upto = 300, price = 10.59 }")
            (folder / source.name).write_text(text, encoding="utf-8")
    return load_config(folder / "site.toml")


def _sums(table: pa.Table) -> dict[str, Decimal]:
    grouped = table.group_by("account_id").aggregate([("amount", "sum")])
    return dict(zip(grouped.column("account_id").to_pylist(), grouped.column("amount_sum").to_pylist(),
                    strict=True))


def test_rerating_after_a_tariff_change_writes_reversals_and_replacements(client, society, config, dataset,
                                                                           tmp_path):
    rate_dataset(config, dataset, client, out=tmp_path / "before", now=NOW)
    before = read_results(tmp_path / "before")["charges"]
    raised = _raised_tariff(society, tmp_path)
    rate_dataset(raised, dataset, client, out=tmp_path / "after", previous=tmp_path / "before" / "charges",
                 now=NOW)
    after = read_results(tmp_path / "after")
    assert after["charges"].equals(rate(society.readings_file, config=raised, now=NOW).charges)
    changes = after["changes"]
    kinds = set(changes.column("change").to_pylist())
    assert kinds == {"reversal", "replacement"}
    assert changes.num_rows < 2 * before.num_rows  # lines that did not change are not repeated
    # per account: what was charged plus the changes is what is charged now
    old, new, diff = _sums(before), _sums(after["charges"]), _sums(changes)
    assert any(v != 0 for v in diff.values())
    assert {a: old.get(a, 0) + diff.get(a, 0) for a in new} == new
    # line for line: the previous lines less the reversed ones, plus the replacements, are the new lines
    reversed_ = changes.filter(pc.equal(changes.column("change"), "reversal")).drop_columns(["change"])
    replaced = changes.filter(pc.equal(changes.column("change"), "replacement")).drop_columns(["change"])
    assert _lines(before) - _lines(reversed_, negated=True) + _lines(replaced) == _lines(after["charges"])
    assert not _lines(reversed_, negated=True) - _lines(before)  # only lines that were charged are reversed


def _lines(table: pa.Table, negated: bool = False) -> Counter:
    rows = table.to_pylist()
    if negated:
        for r in rows:
            r["amount"] = -r["amount"]
            r["quantity"] = None if r["quantity"] is None else -r["quantity"]
    return Counter(tuple(r.items()) for r in rows)


def test_rerating_unchanged_writes_no_changes(client, config, dataset, tmp_path):
    rate_dataset(config, dataset, client, out=tmp_path / "one", now=NOW)
    rate_dataset(config, dataset, client, out=tmp_path / "two", previous=tmp_path / "one" / "charges",
                 now=NOW)
    results = read_results(tmp_path / "two")
    assert results["changes"].num_rows == 0 and results["charges"].num_rows > 100


def test_unknown_meters_error_names_the_reading_like_rate(client, society, config, dataset, tmp_path):
    with pytest.raises(UnknownMeterError) as single:
        rate(society.readings_file, config=config, unknown_meters="error", now=NOW)
    with pytest.raises(UnknownMeterError) as spread:
        rate_dataset(config, dataset, client, out=tmp_path / "out", unknown_meters="error", now=NOW)
    assert str(spread.value) == str(single.value)
    assert not (tmp_path / "out").exists()


def test_a_registry_changed_since_partitioning_is_refused(client, society, config, dataset, tmp_path):
    """A meter moved to an account of another shard would split an account
    over two tasks: an error that says to partition again, and no results."""
    meters = config.registry.meters
    shards = account_shards(config)
    moved = next(i for i, m in enumerate(meters) if m.meter_id.startswith("W-"))
    other = next(a for a in config.registry.accounts.values()
                 if shards[[m.account_id for m in meters].index(a.account_id)] != shards[moved])
    text = (society.folder / "meters.csv").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith(f'"{meters[moved].meter_id}"'))
    folder = tmp_path / "moved"
    folder.mkdir()
    for name in ("site.toml", "tariffs.toml", "accounts.csv", "groups.csv"):
        (folder / name).write_text((society.folder / name).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "meters.csv").write_text(
        text.replace(line, line.replace(f'"{meters[moved].account_id}"', f'"{other.account_id}"', 1)),
        encoding="utf-8")
    changed = load_config(folder / "site.toml")
    with pytest.raises(InputError, match="partition them again"):
        rate_dataset(changed, dataset, client, out=tmp_path / "out", now=NOW)
    assert not (tmp_path / "out").exists()


def test_results_never_overwrite_a_folder(client, config, dataset, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "kept.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        rate_dataset(config, dataset, client, out=tmp_path / "out", now=NOW)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["kept.txt"]


# ------------------------------------------------------------------ the command line

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_partition_then_rate_on_the_cluster_equals_rate(client, society, tmp_path, capsys):
    site = society.site_file
    code, _, err = run_cli(capsys, "partition", "--site", site, society.readings_file, "--out",
                           tmp_path / "by-shard", "--batch-rows", "5000")
    assert code == 0 and f"{society.readings:,} readings" in err
    code, single_out, _ = run_cli(capsys, "rate", "--site", site, society.readings_file, "--out",
                                  tmp_path / "single", "--now", "2030-01-01T00:00:00Z")
    assert code == 0
    code, out, err = run_cli(capsys, "rate", "--site", site, tmp_path / "by-shard", "--dask",
                             client.scheduler.address, "--out", tmp_path / "spread", "--now",
                             "2030-01-01T00:00:00Z")
    assert code == 0, err
    assert out == single_out  # the same summary
    results = read_results(tmp_path / "spread")
    for name in ("charges", "anomalies", "apportionment"):
        assert results[name].equals(pq.read_table(tmp_path / "single" / f"{name}.parquet")), name


@pytest.mark.parametrize("extra, fragment", [
    (["--charges", "c.parquet"], "give --out DIR"),
    (["--out", "{tmp}/r", "--format", "csv"], "--dask writes Parquet"),
    (["--out", "{tmp}/r", "--dask", "local:0"], "local:N needs N >= 1"),
])
def test_cli_dask_refuses_what_it_cannot_write(society, tmp_path, capsys, extra, fragment):
    argv = ["rate", "--site", society.site_file, society.readings_file, "--dask", "local:1"]
    code, out, err = run_cli(capsys, *argv, *[e.format(tmp=tmp_path) for e in extra])
    assert code == 2 and out == ""
    assert err.startswith("rating: error: ") and fragment in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_unreachable_scheduler_is_one_error_line(society, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(partition_cli, "SCHEDULER_CONNECT_TIMEOUT_S", 1)
    code, _, err = run_cli(capsys, "rate", "--site", society.site_file, society.readings_file, "--dask",
                           "tcp://127.0.0.1:9", "--out", tmp_path / "r")
    assert code == 2 and err.startswith("rating: error: tcp://127.0.0.1:9: cannot reach")
    assert list(tmp_path.iterdir()) == []


def test_cli_partition_bad_cell_names_file_and_row_and_leaves_nothing(society, tmp_path, capsys):
    csv = tmp_path / "readings.csv"
    csv.write_text("meter_id,ts,value\nE-A-0101,2025-05-01T00:00:00+05:30,10\nE-A-0101,yesterday,11\n")
    code, _, err = run_cli(capsys, "partition", "--site", society.site_file, csv, "--out", tmp_path / "ds")
    assert code == 2 and "readings.csv" in err and "row 2" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["readings.csv"]
