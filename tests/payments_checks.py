"""A check the statement import tests share: a file refused, naming where."""

from __future__ import annotations

from typing import Any

import pytest

from rating.payments import StatementError, parse_statements


def refused(data: str | bytes, file: str, *, layout: Any = None, **expected: str) -> StatementError:
    """The StatementError reading `data` as `file` raises; its details name `file` and hold each
    `expected` value (statement=, entry=, field=, row=, column=)."""
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(StatementError) as caught:
        parse_statements(raw, file=file, layout=layout)
    error = caught.value
    assert error.details["file"] == file
    for key, value in expected.items():
        assert value in error.details.get(key, ""), (key, error.details, str(error))
    return error
