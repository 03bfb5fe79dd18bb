"""A bill run on a real site (the demo society) over both dues ledgers:
drafts write nothing and repeat, an issue happens once, runs go forward."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.billing.documents import LineKind
from rating.billing.inputs import load_site_billing, run_cycle
from rating.billing.ledger import CycleOverlap
from rating.billing.run import CycleIssued, RunInputs, draft_cycle, issue_cycle
from rating.cli.demo import generate_demo
from rating.errors import InputError
from tests.billing_drafts import run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    folder = tmp_path_factory.mktemp("society")
    return load_site_billing(generate_demo(folder, towers=1, seed=3).site_file)


def inputs(society, month: str) -> RunInputs:
    return RunInputs(run_cycle(society.site_id, month, society.billing), society.billing, society.numbering,
                     society.units(), rules_text=society.rules_text)


def test_drafts_write_nothing_and_the_same_inputs_give_the_same_drafts(make_ledger, society):
    async def go(ledger):
        before = await ledger.counts()
        first = await draft_cycle(ledger, inputs(society, "2025-05"))
        second = await draft_cycle(ledger, inputs(society, "2025-05"))
        return before, first, second, await ledger.counts()

    before, first, second, after = run(make_ledger, go)
    assert first == second and len(first) == len(society.units())
    assert after == before and set(after.values()) == {0}
    flats = [bill for bill in first if bill.bill_to.startswith("Flat ")]
    assert len(flats) == 32  # no readings: every flat still owes its maintenance, its meters at zero
    assert all(any(line.head == "maintenance" and line.amount_minor > 0 for line in bill.lines)
               and len(bill.anomalies) == 2 for bill in flats)


def test_an_issued_cycle_is_issued_once_and_its_dues_are_the_next_cycles_arrears(make_ledger, society):
    async def go(ledger):
        drafts = await draft_cycle(ledger, inputs(society, "2025-05"))
        issued = await issue_cycle(ledger, inputs(society, "2025-05"), actor="committee")
        counts = await ledger.counts()
        again = await issue_cycle(ledger, inputs(society, "2025-05"), actor="committee")
        with pytest.raises(CycleIssued) as redraft:
            await draft_cycle(ledger, inputs(society, "2025-05"))
        june = await draft_cycle(ledger, inputs(society, "2025-06"))
        return drafts, issued, again, counts, await ledger.counts(), redraft.value, june

    drafts, issued, again, counts, after, redraft, june = run(make_ledger, go)
    assert issued.summary["bills"] == len(drafts) and issued.summary["first"] == "B/25-26/000001"
    assert issued.summary["charges_minor"] == sum(d.charges_minor for d in drafts)
    assert again.replayed and again.summary == issued.summary and after == counts
    assert redraft.where == "cycle 2025-05-01..2025-05-31" and "issued already" in redraft.message
    may = {d.account_id: d for d in drafts}
    for bill in june:
        arrears = sum(line.amount_minor for line in bill.lines if line.kind is LineKind.ARREARS)
        assert arrears == may[bill.account_id].charges_minor


def test_a_run_before_or_across_an_issued_cycle_is_refused(make_ledger, society):
    async def go(ledger):
        await issue_cycle(ledger, inputs(society, "2025-06"), actor="committee")
        with pytest.raises(CycleOverlap) as earlier:
            await issue_cycle(ledger, inputs(society, "2025-05"), actor="committee")
        return earlier.value, await ledger.counts()

    earlier, counts = run(make_ledger, go)
    assert "comes before the issued cycle 2025-06-01..2025-06-30" in earlier.message
    assert counts["dues_ops"] == 1


def test_a_run_cycle_is_a_month_and_its_bill_date_not_before_its_end(society):
    cycle = run_cycle("S", "2025-02", society.billing)
    assert (cycle.period_start, cycle.period_end, cycle.bill_date, cycle.due_date) == (
        dt.date(2025, 2, 1), dt.date(2025, 2, 28), dt.date(2025, 3, 1), dt.date(2025, 3, 16))
    for month in ("2025-13", "May", "2025-5"):
        with pytest.raises(InputError, match="a cycle is a month"):
            run_cycle("S", month, society.billing)
    with pytest.raises(InputError, match="before the cycle ends"):
        run_cycle("S", "2025-02", society.billing, bill_date=dt.date(2025, 2, 27))


def test_a_run_rates_every_month_a_quarterly_bill_covers():
    """A quarterly account's bill covers three monthly rating periods, named by the
    month each ends in; a run with only monthly accounts rates its own month."""
    import datetime as dt

    from rating.billing.cycles import run_months
    from rating.billing.documents import Cycle, Unit
    from rating.model.site import Cycle as BillingCycle

    june = Cycle("s", dt.date(2025, 6, 1), dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 15))
    monthly = Unit("M-1")
    quarterly = Unit("Q-1", billing_cycle=BillingCycle.parse("quarterly", where="t"))
    default = BillingCycle.parse("calendar_month", where="t")
    assert run_months(june, [monthly], default) == [dt.date(2025, 6, 1)]
    assert run_months(june, [monthly, quarterly], default) == [dt.date(2025, m, 1) for m in (4, 5, 6)]
    anchored = Unit("A-1", billing_cycle=BillingCycle.parse("quarterly:anchor:15", where="t"))
    july = Cycle("s", dt.date(2025, 7, 1), dt.date(2025, 7, 31), dt.date(2025, 8, 1), dt.date(2025, 8, 15))
    # its quarter 15 April .. 14 July ends in July: the monthly periods ending in May, June and July
    assert run_months(july, [anchored], default) == [dt.date(2025, m, 1) for m in (5, 6, 7)]
