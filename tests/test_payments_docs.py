"""The examples of docs/payments.md run, section by section, in one namespace; each
reconciliation case and each allocation order has its own worked example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_examples import run_examples

DOCS = Path(__file__).resolve().parent.parent / "docs" / "payments.md"
CASES = ("Exact match", "Batch split", "Ambiguous: to review", "Unmatched",
         "A partial payment, oldest bill first", "Interest first", "By charge-head order",
         "More than all the dues: an advance", "A payment against a cancelled bill", "A bounced cheque",
         "Refunds", "Gateway payments", "Exact match: a transfer paying a bill",
         "Ambiguous: to the review queue",
         "Unmatched, and a re-import", "Allocating held money again", "A gateway refund of a part",
         "A payment in suspense, assigned", "On the statement: what paid what")


def test_the_examples_of_the_payments_documentation_run():
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/payments.md not in this tree")
    failures, tried = run_examples(DOCS)
    assert failures == 0
    assert all(tried[case] >= 1 for case in CASES), tried
    assert sum(tried.values()) >= 90
