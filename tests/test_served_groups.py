"""A served site with shared-area groups: the demo society (its lifts and
common areas split over the flats by its share head) is served whole, and
`rating bills run` through the server prints what it prints on the ledger,
shared-area lines included; a site whose groups no share head bills is
refused at `rating serve` and at LoadConfig, writing nothing; a LoadConfig
that changes the groups file takes effect on the next bill."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import pyarrow.parquet as pq
import pytest

from rating.cli.commands import main
from rating.cli.demo import generate_demo
from rating.client.billing import BillingClient
from rating.client.calls import RatingClient
from rating.server.settings import Settings
from tests.billing_server import failure, serving, settings

CYCLE = "2025-05"
SHARE_HEAD = "common_electricity"  # the demo's share head: groups lift-A and common-areas


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    """The demo society as `rating demo` writes it, groups and all."""
    return generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5)


@pytest.fixture
def served(society, tmp_path):
    with serving(settings(society.site_file, tmp_path / "data")) as served:
        yield served


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def copy_of(society, folder: Path) -> Path:
    """A copy of the society's files, to change; returns its site file."""
    shutil.copytree(society.folder, folder)
    return folder / society.site_file.name


def shares(bill) -> dict[str, int]:
    """The bill's shared-area lines: group -> amount (the basis names the group)."""
    return {dict((b.name, b.value) for b in line.basis)["group"]: line.amount_minor
            for line in bill.lines if line.head == SHARE_HEAD}


def lift_members(society) -> set[str]:
    rows = society.folder.joinpath("groups.csv").read_text(encoding="utf-8").splitlines()
    return {row.split(",")[1].strip('"') for row in rows if row.startswith('"lift-A"')}


def lift_shares(reply, members: set[str]) -> dict[str, int]:
    return {d.account_id: shares(d)["lift-A"] for d in reply.drafts if d.account_id in members}


def test_bills_run_through_the_server_equals_the_ledger_shared_area_lines_included(served, society,
                                                                                   tmp_path, capsys):
    readings = society.readings_file
    local = ["--site", society.site_file, "--ledger", tmp_path / "local.db", "--readings", readings]
    remote = ["--server", served.target, "--readings", readings]
    run = ("bills", "run", "--cycle", CYCLE, "--accounts", "40")
    here, there = cli(capsys, *run, *local), cli(capsys, *run, *remote)
    # stdout and the exit code; stderr may hold the in-process server's own log lines
    assert here[:2] == there[:2] and here[0] == 0
    assert "rating: error" not in here[2] + there[2]
    assert "Lifts and common areas (share)" in here[1]
    with BillingClient(served.target) as client:
        drafts = client.run(CYCLE, readings=_ipc(readings), bills_max=100).drafts
    lift = {d.account_id: shares(d)["lift-A"] for d in drafts if "lift-A" in shares(d)}
    members = lift_members(society)
    # the lift meter's cost leaves the society's own bill and is shared by the 32 flats, to the paisa
    assert set(lift) == members | {"GMCHS"} and len(members) == 32
    assert all(lift[m] > 0 for m in members) and lift["GMCHS"] == -sum(lift[m] for m in members)


def test_a_site_whose_groups_no_share_head_bills_is_refused_at_serve_writing_nothing(society, tmp_path,
                                                                                      capsys):
    site = copy_of(society, tmp_path / "society")
    billing = site.parent / "billing.toml"
    text = billing.read_text(encoding="utf-8")
    billing.write_text(text.replace('groups = ["lift-A", "common-areas"]', 'groups = ["lift-A"]'),
                       encoding="utf-8")
    code, out, err = cli(capsys, "serve", "--site", site, "--data-dir", tmp_path / "data", "--port", "0")
    assert code == 2 and out == ""
    assert "site[files].groups" in err and "'common-areas' has no postpaid head" in err
    assert "never by prepaid debits" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_load_config_with_a_group_no_share_head_bills_is_refused_and_changes_nothing(served, society):
    groups = society.folder.joinpath("groups.csv").read_text(encoding="utf-8")
    extra = groups + '"gym","A-0101","equal","cost","E-A-0101"\n'
    before = served.counts()
    with RatingClient(served.target) as rating:
        version = served.running.service.config_version
        error = failure(lambda: rating.load_config(groups=extra.encode()))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and error.reason == "BAD_CONFIG"
    assert "'gym' has no postpaid head" in error.message and "site[files].groups" in error.message
    assert served.running.service.config_version == version and served.counts() == before


def test_a_loaded_groups_file_is_what_the_next_bill_splits(society, tmp_path):
    groups = society.folder.joinpath("groups.csv").read_text(encoding="utf-8")
    lift_rows = [row for row in groups.splitlines() if row.startswith('"lift-A"')]
    assert len(lift_rows) > 2
    # the lift split equally instead of by area: every member's share then differs by at most 1 paisa
    equal = groups.replace(',"area","cost","E-LIFT-A"', ',"equal","cost","E-LIFT-A"')
    assert equal != groups
    readings, members = _ipc(society.readings_file), lift_members(society)
    # deductions rated in the planner child, which builds the same documents
    in_child = Settings(port=0, site=str(society.site_file), data_dir=str(tmp_path / "data"),
                        log_format="text", rating_process=1, sweep_interval_s=3600.0).check()
    with serving(in_child) as served, BillingClient(served.target) as client, \
            RatingClient(served.target) as rating:
        before = lift_shares(client.run(CYCLE, readings=readings, bills_max=100), members)
        rating.load_config(groups=equal.encode())
        after = lift_shares(client.run(CYCLE, readings=readings, bills_max=100), members)
    assert set(before) == set(after) == members
    assert sum(before.values()) == sum(after.values())  # the same lift cost, split another way
    assert max(before.values()) - min(before.values()) > 1  # by area
    assert max(after.values()) - min(after.values()) <= 1  # equal: within a paisa


def _ipc(path: Path):
    return pq.read_table(path)


def test_rate_batch_splits_the_servers_groups_over_the_batch_as_rate_does(served, society):
    from rating.config.loader import load_config
    from rating.engine import rate

    readings = _ipc(society.readings_file)
    with RatingClient(served.target) as rating:
        charges, _ = rating.rate(readings)
    local = rate(readings, config=load_config(society.site_file), now=served.running.service.now())
    assert "group_id" in charges.column_names and charges.equals(local.charges)
    lift = [a for g, a in zip(charges["group_id"].to_pylist(), charges["amount"].to_pylist(),
                              strict=True) if g == "lift-A"]
    assert len(lift) == 33 and sum(lift) == 0 and max(lift) > 0  # the lift's cost moved onto the flats
