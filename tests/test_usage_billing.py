"""Instalments billed postpaid: `rating bills run --instalments` puts the
instalments due in the cycle on the bill as one-off items of the plan's item
head, and a plan naming a head that is not an item head is refused."""

from __future__ import annotations

import pytest

from rating.cli.commands import main
from rating.cli.demo import generate_demo

PLANS = """\
[plans.festival]
fund = "festival"
title = "Festival fund"
instalments = 3
first_due = 2025-05-10
every_months = 1
head = "@HEAD@"

[plans.festival.accounts]
A-0101 = 1000.00
A-0102 = 0.02
"""


@pytest.fixture(scope="module")
def site_file(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5).site_file


def _item_lines(capsys, *args) -> list[str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return [" ".join(line.split()) for line in out.splitlines() if line.strip().startswith("event_fee")]


def test_the_instalments_due_in_the_cycle_are_billed_under_their_item_head(site_file, tmp_path, capsys):
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS.replace("@HEAD@", "event_fee"), encoding="utf-8")
    ledger = ["--site", site_file, "--ledger", tmp_path / "ledger.db", "--accounts", "2"]
    assert _item_lines(capsys, "bills", "run", "--cycle", "2025-05", *ledger) == []
    assert _item_lines(capsys, "bills", "run", "--cycle", "2025-05", "--instalments", plans, *ledger) == [
        "event_fee charge 333.34 Festival fund: instalment 1 of 3 (due 2025-05-10)",
        "event_fee charge 0.01 Festival fund: instalment 1 of 3 (due 2025-05-10)"]
    assert _item_lines(capsys, "bills", "run", "--cycle", "2025-07", "--instalments", plans, *ledger) == [
        "event_fee charge 333.33 Festival fund: instalment 3 of 3 (due 2025-07-10)"]  # A-0102's third is 0
    assert _item_lines(capsys, "bills", "run", "--cycle", "2025-08", "--instalments", plans, *ledger) == []


def test_a_plan_billed_under_a_head_that_is_not_an_item_head_is_refused(site_file, tmp_path, capsys):
    plans = tmp_path / "plans.toml"
    plans.write_text(PLANS.replace("@HEAD@", "maintenance"), encoding="utf-8")
    code = main(["bills", "run", "--cycle", "2025-05", "--site", str(site_file), "--ledger",
                 str(tmp_path / "ledger.db"), "--instalments", str(plans)])
    _, err = capsys.readouterr()
    assert code == 2 and "names head 'maintenance', which is not an item head" in err
