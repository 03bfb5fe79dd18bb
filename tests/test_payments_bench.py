"""bench/bench_reconcile.py runs on every format, and its synthetic month sorts the same
way whichever file it was read from."""

from __future__ import annotations

import re

from bench import bench_reconcile

COUNTS = re.compile(r"matched ([\d,]+) .*; review ([\d,]+) .*; unmatched credits ([\d,]+), debits ([\d,]+)")


def test_the_reconcile_benchmark_runs_and_every_format_sorts_the_lines_alike(capsys):
    sorted_lines = {}
    for format in ("camt.053", "mt940", "csv"):
        bench_reconcile.main(["--lines", "2000", "--repeat", "1", "--format", format])
        out = capsys.readouterr().out
        assert "parse + reconcile" in out and "target 30 s for the whole: met" in out
        counts = COUNTS.search(out)
        assert counts is not None
        sorted_lines[format] = tuple(int(c.replace(",", "")) for c in counts.groups())
    matched, review, credits, debits = sorted_lines["camt.053"]
    assert matched + review + credits + debits == 2000
    assert matched > 1500 and review > 0 and debits > 0
    assert sorted_lines["mt940"] == sorted_lines["csv"] == sorted_lines["camt.053"]
