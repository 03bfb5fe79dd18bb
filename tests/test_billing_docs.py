"""The examples of docs/billing.md run, section by section, in one namespace; every
rule has its worked example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_examples import run_examples

DOCS = Path(__file__).resolve().parent.parent / "docs" / "billing.md"
RULES = ("Maintenance per area", "Part periods", "Fixed charges, funds and parking", "Non-occupancy charge",
         "Metered utilities and meters that sent nothing", "Shared-area shares", "Custom fee items",
         "Arrears brought forward", "Simple interest per annum, actual/365",
         "Grace for current dues only, interest from the end of grace", "Compounding",
         "A monthly percentage on whole months in arrears",
         "A flat late fee, a fee per day, caps and a minimum",
         "No interest on interest", "Taxes", "GST with a threshold, as CGST and SGST", "Rounding off",
         "Billing cycles and runs", "Bad input")


def test_the_examples_of_the_billing_documentation_run():
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/billing.md not in this tree")
    failures, tried = run_examples(DOCS)
    assert failures == 0
    assert all(tried[rule] >= 1 for rule in RULES), tried
