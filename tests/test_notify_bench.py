"""bench/bench_notify.py runs on both ledgers and reports what it measures."""

from __future__ import annotations

import re

from bench import bench_notify


def test_the_notify_benchmark_runs_on_both_ledgers(capsys):
    bench_notify.main(["--flats", "300", "--sends", "200", "--repeat", "1"])
    out = capsys.readouterr().out
    for ledger in ("sqlite", "postgres"):
        # an email for every flat, an SMS for half
        assert re.search(rf"^{ledger}: 450 notices planned a run$", out, flags=re.M), out
    assert out.count("plan / reads") == 2 and out.count("relay / channel") == 2
