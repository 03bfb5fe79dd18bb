"""docs/reports.md: every example runs."""

from __future__ import annotations

from pathlib import Path

from tests.doc_examples import run_examples

DOC = Path(__file__).resolve().parent.parent / "docs" / "reports.md"


def test_every_example_of_the_reports_doc_runs():
    failures, tried = run_examples(DOC)
    assert failures == 0
    assert all(tried[s] > 0 for s in ("Defaulters and ageing", "Collection KPIs per cycle",
                                       "Receipts by channel", "The cash-flow forecast"))
