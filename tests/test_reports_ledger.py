"""Reports over a real dues ledger (SQLite and a throwaway PostgreSQL): the
history generator's society, and the hostile cases (an as-of day before any
bill, an empty ledger, an unknown account, an advance, a cancelled bill)."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.billing.ledger_payment_types import Method, PaymentRequest
from rating.errors import InputError
from rating.reports import ageing, facts, kpis, reference
from rating.reports.history import make_history
from tests.billing_drafts import run

pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]  # postgres_server, make_ledger


async def _history(ledger, **kw):
    history = await make_history(ledger, flats=12, cycles=12, **kw)
    return history, await facts.load(ledger, history.site_id)


def test_ageing_and_kpis_of_a_years_history_equal_the_reference_and_sum_to_the_ledger(make_ledger):
    async def go(ledger):
        history, found = await _history(ledger)
        return history, found, await ledger.balances(history.site_id), await ledger.advances(history.site_id)

    history, found, balances, advances = run(make_ledger, go)
    table = ageing.ageing(found, history.end, every_account=True)
    assert [tuple(r.values()) for r in table.to_pylist()] == reference.ageing(found.rows, history.end,
                                                                               every_account=True)
    # over every account, owed minus credit is the ledger's balance minus its advances
    assert sum(table["net_minor"].to_pylist()) == sum(balances.values()) - sum(advances.values())
    kpi = kpis.kpis(found, history.end)
    assert kpi.to_pylist() == reference.kpis(found.rows, history.end)
    assert kpi.num_rows == 12 and all(r["bills"] >= 11 for r in kpi.to_pylist())
    never = [a for a, h in history.habits.items() if h == "never"]
    defaulters = ageing.ageing(found, history.end)["account_id"].to_pylist()
    assert set(never) <= set(defaulters)


def test_an_as_of_day_before_any_bill_and_an_empty_ledger_give_empty_reports(make_ledger):
    async def go(ledger):
        empty = await facts.load(ledger, "nobody")
        _, found = await _history(ledger)
        return empty, found

    empty, found = run(make_ledger, go)
    for f in (empty, found):
        assert ageing.ageing(f, dt.date(2020, 1, 1)).num_rows == 0
        assert kpis.kpis(f, dt.date(2020, 1, 1)).num_rows == 0
    assert ageing.ageing(empty, dt.date(2030, 1, 1), every_account=True).num_rows == 0


def test_an_advance_larger_than_all_dues_is_credit_and_a_cancelled_bill_is_owed_by_nobody(make_ledger):
    async def go(ledger):
        history, _ = await _history(ledger)
        account = history.units[1].account_id
        owed = sum(v for (a, _), v in (await ledger.balances(history.site_id)).items() if a == account)
        await ledger.pay(PaymentRequest("advance-1", history.site_id, account, Method.CASH, owed + 1_000_000,
                                        history.end, "tester"))
        return history, account, owed, await facts.load(ledger, history.site_id)

    history, account, owed, found = run(make_ledger, go)
    (row,) = ageing.ageing(found, history.end, account_id=account, every_account=True).to_pylist()
    assert row["overdue_minor"] == 0 and row["credit_minor"] >= 1_000_000 and row["net_minor"] < 0
    cancelled = [b for b in found.rows.bills if b[6]]
    assert len(cancelled) == 1
    (first,) = kpis.cycles_of([b for b in found.rows.bills if b[2] == cancelled[0][2]], history.end)
    assert cancelled[0] not in first.bills
    assert reference.bill_owed(found.rows, cancelled[0][0], history.end) <= 0


def test_an_unknown_account_is_refused_by_name(make_ledger):
    async def go(ledger):
        return await _history(ledger)

    history, found = run(make_ledger, go)
    with pytest.raises(InputError, match="Z-999"):
        ageing.check_account(found, "Z-999")
