"""The examples of docs/payments.md run, section by section, in one namespace; each
reconciliation case has its own worked example."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "payments.md"
CASES = ("Exact match", "Batch split", "Ambiguous: to review", "Unmatched")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every ## / ### section, in order."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_the_examples_of_the_payments_documentation_run():
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/payments.md not in this tree")
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
    assert all(tried[case] >= 1 for case in CASES), tried
    assert sum(tried.values()) >= 20
