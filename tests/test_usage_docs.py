"""The examples of docs/usage.md run, section by section, in one namespace;
every part (parking, anomalies, batches, facilities, instalments, funds) has one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_examples import run_examples

DOCS = Path(__file__).resolve().parent.parent / "docs" / "usage.md"
PARTS = ("The usage file", "A day stay, a night stay capped, a visitor, a lost ticket",
         "Anomalies, not charges", "Batch after batch", "Facilities per use", "Instalments", "Funds")


def test_the_examples_of_the_usage_documentation_run():
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/usage.md not in this tree")
    failures, tried = run_examples(DOCS)
    assert failures == 0
    assert all(tried[part] >= 1 for part in PARTS), tried
