"""bench/bench_billing.py runs on both ledgers, and its society bills what it says:
every flat, arrears and interest on a fifth, parking on a third."""

from __future__ import annotations

import re

from bench import bench_billing
from rating.billing.documents import LineKind
from tests.billing_drafts import run


def test_the_billing_benchmark_runs_on_both_ledgers(capsys):
    bench_billing.main(["--flats", "300", "--repeat", "1"])
    out = capsys.readouterr().out
    for ledger in ("sqlite", "postgres"):
        assert re.search(rf"^{ledger}: [\d,]+ entries a run$", out, flags=re.M), out
    assert out.count("issue / ceiling") == 2 and "peak resident memory" in out


def test_the_benchmark_society_has_arrears_on_a_fifth_and_parking_on_a_third(tmp_path):
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.billing.run import draft_cycle

    inputs, dues = bench_billing.society(300)

    async def go(ledger):
        await ledger.post(dues)
        return await draft_cycle(ledger, inputs)

    drafts = run(lambda: SqliteDuesLedger(tmp_path / "ledger.db"), go)
    kinds = [{line.kind for line in bill.lines} for bill in drafts]
    heads = [{line.head for line in bill.lines} for bill in drafts]
    assert len(drafts) == 300 and len(dues.entries) == 60
    assert sum(LineKind.ARREARS in k for k in kinds) == 60
    assert sum(LineKind.INTEREST in k for k in kinds) == 60
    assert sum("parking" in h for h in heads) == 100 and all({"electricity", "water"} <= h for h in heads)
    assert any("cgst" in h for h in heads)  # GST on the flats over the threshold
