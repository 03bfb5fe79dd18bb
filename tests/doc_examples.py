"""Running a Markdown document's examples as doctests, section by section in one
namespace, so a later section builds on an earlier one."""

from __future__ import annotations

import doctest
import re
from pathlib import Path


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every ## / ### section, in order."""
    parts = re.split(r"^#{2,3} (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def run_examples(path: Path) -> tuple[int, dict[str, int]]:
    """Run every example of `path`: the number that failed and, per section heading,
    how many examples it tried."""
    text = re.sub(r"^```\w*$", "", path.read_text(encoding="utf-8"), flags=re.M)  # fences end outputs
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    namespace: dict[str, object] = {}
    tried: dict[str, int] = {}
    for heading, body in sections(text):
        test = doctest.DocTestParser().get_doctest(body, namespace, heading, str(path), 0)
        before = runner.tries
        runner.run(test, clear_globs=False)
        namespace = test.globs  # a DocTest copies the names it is given: hand them on
        tried[heading] = runner.tries - before
    return runner.failures, tried
