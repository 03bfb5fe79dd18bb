"""The examples of docs/reminders.md run, section by section, in one namespace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.doc_examples import run_examples

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "reminders.md"
SECTIONS = ("The rules: reminders.toml", "Templates and merge tags", "Contacts and consent",
            "Owner tags and tone", "Planning a day", "The relay and its channels")


def test_the_examples_of_the_reminders_documentation_run(monkeypatch):
    if not DOCS.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/reminders.md not in this tree")
    monkeypatch.chdir(ROOT)  # the examples copy examples/reminders
    failures, tried = run_examples(DOCS)
    assert failures == 0
    assert all(tried[section] >= 1 for section in SECTIONS), tried
    assert os.getcwd() == str(ROOT)
