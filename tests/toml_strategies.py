"""Hypothesis strategies for hostile TOML: any value of any TOML type where a
document expects one, the TOML text of a document, and a check that a loader
given any bytes loads them or refuses them naming the file (tests of the site
and tariff loaders)."""

from __future__ import annotations

import copy
import datetime as dt
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st

TOML_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]),
    st.text(max_size=12),
    st.sampled_from(["", "UTC", "Asia/Kolkata", "America", "half_up", "anchor:5", "anchor:²", "2025-05-01",
                     "calendar_month", "00:00-24:00", "electricity", "maintenance", "sunday"]),
    st.booleans(),
    st.dates(),
    st.datetimes(),
    st.times(),
)
KEYS = st.text(min_size=1, max_size=8) | st.sampled_from(
    ["site", "name", "time_zone", "rounding", "holidays", "files", "prepaid", "wallets", "defaults",
     "electricity", "low_balance", "cut_off", "friendly_hours", "friendly_days", "tariff", "price"])
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


def toml_value(value: object) -> str:
    """A value as TOML text (tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return "nan"
        if value.is_infinite():
            return "inf" if value > 0 else "-inf"
        text = str(value)
        return text if any(c in text for c in ".E") else text + ".0"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a TOML value: {value!r}")


def toml_document(doc: dict) -> str:
    """A document as TOML text: one `key = value` line per top-level key."""
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in doc.items())


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = (f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else "\\" + c if c in '"\\' else c for c in text)
    return '"' + "".join(escaped) + '"'


def places(value: object, path: tuple = ()) -> list[tuple]:
    """Every path into a parsed TOML document, the document itself first."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += places(item, (*path, i))
    return found


def replaced(doc: dict, place: tuple, value: object) -> dict:
    """A copy of `doc` with the value at `place` replaced."""
    doc = copy.deepcopy(doc)
    node = doc
    for key in place[:-1]:
        node = node[key]
    node[place[-1]] = value
    return doc


def loads_or_refuses(data: bytes, load: Callable[[Path], object], error: type, name: str) -> None:
    """`load` of `data` written as file `name` succeeds or raises `error`
    naming the file; any other exception fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            load(path)
        except error as refused:
            assert refused.where is not None and refused.where.startswith(str(path)), refused
