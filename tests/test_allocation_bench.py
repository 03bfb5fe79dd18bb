"""bench/bench_allocation.py runs on both ledgers, and its month of payments is what it
says: one payment per flat, a fifth paying May too, some leaving an advance."""

from __future__ import annotations

import re

from bench import bench_allocation


def test_the_allocation_benchmark_runs_on_both_ledgers(capsys):
    bench_allocation.main(["--flats", "300", "--repeat", "1", "--chunk", "100"])
    out = capsys.readouterr().out
    for ledger in ("sqlite", "postgres"):
        assert re.search(rf"^{ledger}: 300 payments, 60 leave an advance$", out, flags=re.M), out
    assert out.count("allocate / ceiling") == 2 and out.count("payments/s") == 2


def test_the_month_pays_june_and_a_fifth_pays_may_too():
    may, may_totals = bench_allocation.bills(50, bench_allocation.MAY, 1)
    june, june_totals = bench_allocation.bills(50, bench_allocation.JUNE, 2)
    payments = bench_allocation.month_of_payments(50, may_totals, june_totals, 3)
    exact = [p for i, p in enumerate(payments) if i % 10 < 6]
    assert all(p.amount_minor == june_totals[p.account_id] + (may_totals[p.account_id] if i % 5 == 0 else 0)
               for i, p in enumerate(payments) if i % 10 < 6)
    assert len(exact) == 30 and len({p.key for p in payments}) == 50
    assert sum(bool(p.bill) for p in payments) == 5 and len(may.bills) == len(june.bills) == 50
