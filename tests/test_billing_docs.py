"""The examples of docs/billing.md run, section by section, in one namespace; every
rule has its worked example."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "billing.md"
RULES = ("Maintenance per area", "Part periods", "Fixed charges, funds and parking", "Non-occupancy charge",
         "Metered utilities and meters that sent nothing", "Shared-area shares", "Custom fee items",
         "Arrears brought forward", "Simple interest per annum, actual/365",
         "Grace for current dues only, interest from the end of grace", "Compounding",
         "A monthly percentage on whole months in arrears",
         "A flat late fee, a fee per day, caps and a minimum",
         "No interest on interest", "Taxes", "GST with a threshold, as CGST and SGST", "Rounding off",
         "Billing cycles and runs", "Bad input")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every ## / ### section, in order."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_the_examples_of_the_billing_documentation_run():
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/billing.md not in this tree")
    text = re.sub(r"^```\w*$", "", DOCS.read_text(encoding="utf-8"), flags=re.M)  # fences end outputs
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    namespace: dict[str, object] = {}
    tried: dict[str, int] = {}
    for heading, body in sections(text):
        test = doctest.DocTestParser().get_doctest(body, namespace, heading, str(DOCS), 0)
        before = runner.tries
        runner.run(test, clear_globs=False)
        namespace = test.globs  # a DocTest copies the names it is given: hand them on
        tried[heading] = runner.tries - before
    assert runner.failures == 0
    assert all(tried[rule] >= 1 for rule in RULES), tried
