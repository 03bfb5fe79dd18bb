"""Funds (a sinking fund, a special maintenance fund, a lift replacement
fund): what their plans scheduled, what was paid in from wallets or billed by
a date, what the fund was used for, and its balance. From the plans file's
`[funds.<name>]` tables: `title`, `opening` (the balance brought in) and
`uses = [{on = 2026-06-01, amount = 50000, what = "lift motor"}]`.

The balance is on the accrual basis: opening + paid from wallets + billed
(instalments due by the date under a plan's item head) - uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from rating.config.tariff_file import _check_keys, _fail, _number
from rating.fixedpoint import exact_units
from rating.model.site import Site
from rating.usage.instalments import AMOUNT_LIMIT, Plan, instalment_key

FUNDS_SCHEMA = pa.schema([(n, pa.string() if n in ("fund", "title") else pa.int64()) for n in (
    "fund", "title", "opening_minor", "scheduled_minor", "due_minor", "paid_minor", "billed_minor",
    "used_minor", "balance_minor")])


@dataclass(frozen=True)
class Fund:
    name: str
    title: str
    opening_minor: int
    uses: tuple[tuple[dt.date, int, str], ...]  # (on, amount, what)


def funds_from_document(doc: dict, site: Site, *, where: str) -> dict[str, Fund]:
    raw = doc.get("funds", {})
    if not isinstance(raw, dict):
        _fail(where, "funds", "must be a table of [funds.<name>] tables")
    return {name: _fund(name, table, site, where) for name, table in raw.items()}


def _fund(name: str, raw: Any, site: Site, where: str) -> Fund:
    path = f"funds.{name}"
    table = _check_keys(raw, {"title", "opening", "uses"}, (), where, path)
    uses = table.get("uses", [])
    if not isinstance(uses, list):
        _fail(where, f"{path}.uses", "must be an array of {on = DATE, amount = ..., what = \"...\"}")
    parsed = []
    for i, use in enumerate(uses):
        at = f"{path}.uses[{i}]"
        use = _check_keys(use, {"on", "amount", "what"}, ("on", "amount"), where, at)
        if not isinstance(use["on"], dt.date) or isinstance(use["on"], dt.datetime):
            _fail(where, f"{at}.on", f"must be a TOML date, got {use['on']!r}")
        amount = _minor(use["amount"], site, where, f"{at}.amount")
        parsed.append((use["on"], amount, str(use.get("what", ""))))
    opening = _minor(table.get("opening", 0), site, where, f"{path}.opening", sign="non_negative")
    return Fund(name, str(table.get("title", name)), opening, tuple(parsed))


def _minor(value: Any, site: Site, where: str, path: str, *, sign: str = "positive") -> int:
    number = _number(value, where, path, sign=sign)  # type: ignore[arg-type]
    units = exact_units(number, site.minor_unit_exponent)
    if units is None or number >= AMOUNT_LIMIT:
        _fail(where, path, f"must be below {AMOUNT_LIMIT:,} in the minor unit's resolution, got {value}")
    return units


def fund_report(plans: list[Plan], instalments: pa.Table, funds: dict[str, Fund], *, on: dt.date,
                paid_keys: set[str]) -> pa.Table:
    """One row per fund (FUNDS_SCHEMA); `paid_keys`: instalment keys the wallets paid."""
    plan_of = {p.plan_id: p for p in plans}
    rows: dict[str, dict[str, Any]] = {}
    for name in sorted({p.fund for p in plans} | set(funds)):
        fund = funds.get(name, Fund(name, name, 0, ()))
        used = sum(amount for day, amount, _ in fund.uses if day <= on)
        rows[name] = {"fund": name, "title": fund.title, "opening_minor": fund.opening_minor,
                      "scheduled_minor": 0, "due_minor": 0, "paid_minor": 0, "billed_minor": 0,
                      "used_minor": used}
    for r in instalments.to_pylist():
        plan, row = plan_of[r["plan"]], rows[r["fund"]]
        row["scheduled_minor"] += r["amount_minor"]
        if r["due"] > on:
            continue
        row["due_minor"] += r["amount_minor"]
        if instalment_key(plan.plan_id, r["account_id"], r["number"]) in paid_keys:
            row["paid_minor"] += r["amount_minor"]
        elif plan.head is not None:
            row["billed_minor"] += r["amount_minor"]
    for row in rows.values():
        row["balance_minor"] = (row["opening_minor"] + row["paid_minor"] + row["billed_minor"]
                                - row["used_minor"])
    return pa.Table.from_pylist(list(rows.values()), schema=FUNDS_SCHEMA)
