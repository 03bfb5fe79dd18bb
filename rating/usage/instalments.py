"""Instalment plans: an annual fee or a special fund's contribution, per
account, split into N instalments with due dates, exact to the minor unit.

Each account's amount is split by the largest remainder over N equal
weights (rating.apportion.largest_remainder.split, all accounts in one call):
every instalment is the amount // N or one minor unit more, the earlier ones
taking the remainder, and they sum to the amount. `schedule_reference` is the
plain definition (divmod). An instalment is paid from a wallet (a `use`
movement keyed by plan, account and number: paid once, refused with nothing
written when the wallet cannot pay) or billed postpaid as a one-off item of
the plan's item head (`items_for_cycle`), in the cycle its due date falls in.

The plans file (TOML):

    [plans.lift_2026]
    fund = "lift_replacement"        # the fund the plan collects for (funds.py)
    title = "Lift replacement fund 2026-27"
    instalments = 4
    first_due = 2026-04-10
    every_months = 3
    wallet = "special_maintenance_fund"   # paid from this wallet ...
    head = "lift_fund"                    # ... or billed under this item head
    [plans.lift_2026.accounts]
    F-101 = 10000.00
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rating.apportion.largest_remainder import split
from rating.billing.documents import Cycle, OneOffItem
from rating.config.tariff_file import _check_keys, _fail, _number, _text
from rating.errors import TariffError
from rating.fixedpoint import exact_units
from rating.inputs.textfile import load_toml, parse_toml
from rating.model.site import Site
from rating.prepaid.records import Movement
from rating.usage.parking_tariff import _whole
from rating.usage.settings import _NAME, _wallet

INSTALMENTS_MAX = 120
AMOUNT_LIMIT = Decimal(10) ** 12
_PLAN_KEYS = {"fund", "title", "instalments", "first_due", "every_months", "wallet", "head", "accounts"}
SCHEDULE_SCHEMA = pa.schema([("plan", pa.string()), ("fund", pa.string()), ("account_id", pa.string()),
                             ("number", pa.int32()), ("due", pa.date32()), ("amount_minor", pa.int64())])


@dataclass(frozen=True)
class Plan:
    plan_id: str
    fund: str
    title: str
    count: int
    first_due: dt.date
    every_months: int
    wallet: str | None
    head: str | None
    amounts_minor: dict[str, int]  # per account, in account order

    def due_dates(self) -> list[dt.date]:
        return [add_months(self.first_due, i * self.every_months) for i in range(self.count)]


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, the month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return min(day.replace(year=year, month=month, day=1) + dt.timedelta(days=day.day - 1),
               following - dt.timedelta(days=1))


def schedule(plans: list[Plan]) -> pa.Table:
    """Every instalment of every plan (SCHEDULE_SCHEMA), by plan, account, number."""
    totals, offsets = [], [0]
    columns: dict[str, list] = {n: [] for n in SCHEDULE_SCHEMA.names if n != "amount_minor"}
    for plan in plans:
        for account, amount in plan.amounts_minor.items():
            totals.append(amount)
            offsets.append(offsets[-1] + plan.count)
            columns["plan"] += [plan.plan_id] * plan.count
            columns["fund"] += [plan.fund] * plan.count
            columns["account_id"] += [account] * plan.count
            columns["number"] += range(1, plan.count + 1)
            columns["due"] += plan.due_dates()
    weights = np.ones(offsets[-1], np.int64)
    keys = np.concatenate([np.arange(b - a) for a, b in zip(offsets, offsets[1:], strict=False)]) \
        if totals else np.zeros(0, np.int64)
    shares = split(np.array(totals, np.int64), np.array(offsets, np.int64), weights, keys)
    return pa.table({**{n: pa.array(v, SCHEDULE_SCHEMA.field(n).type) for n, v in columns.items()},
                     "amount_minor": pa.array(shares, pa.int64())}, schema=SCHEDULE_SCHEMA)


def schedule_reference(amount_minor: int, count: int) -> list[int]:
    """The definition: amount // count each, the first amount % count one more."""
    base, extra = divmod(amount_minor, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def instalment_key(plan_id: str, account_id: str, number: int) -> str:
    return f"instalment:{plan_id}:{account_id}:{number}"


def wallet_movements(plan: Plan, table: pa.Table, through: dt.date) -> list[Movement]:
    """A `use` movement per instalment of `plan` due on or before `through`."""
    if plan.wallet is None:
        raise TariffError(f"plan {plan.plan_id!r} has no wallet to be paid from",
                          where=f"plans.{plan.plan_id}")
    return [Movement("use", instalment_key(plan.plan_id, r["account_id"], r["number"]), r["account_id"],
                     plan.wallet, r["amount_minor"], reason=f"{plan.title}: instalment {r['number']} of "
                     f"{plan.count} due {r['due'].isoformat()}", reference=plan.plan_id)
            for r in _rows_of(plan, table) if r["due"] <= through]


def items_for_cycle(plan: Plan, table: pa.Table, cycle: Cycle) -> dict[str, list[OneOffItem]]:
    """The instalments due within the cycle, as one-off items of the plan's head, per account."""
    if plan.head is None:
        raise TariffError(f"plan {plan.plan_id!r} has no item head to be billed under",
                          where=f"plans.{plan.plan_id}")
    items: dict[str, list[OneOffItem]] = {}
    for r in _rows_of(plan, table):
        if cycle.period_start <= r["due"] <= cycle.period_end:
            text = f"{plan.title}: instalment {r['number']} of {plan.count} (due {r['due'].isoformat()})"
            items.setdefault(r["account_id"], []).append(OneOffItem(plan.head, r["amount_minor"], text))
    return items


def _rows_of(plan: Plan, table: pa.Table) -> list[dict]:
    """The plan's instalments that owe something (an amount below N minor units leaves some at 0)."""
    return [r for r in table.to_pylist() if r["plan"] == plan.plan_id and r["amount_minor"] > 0]


def load_plans(path: str | Path, site: Site) -> list[Plan]:
    path = Path(path)
    return plans_from_document(load_toml(path, error=TariffError, what="plans file"), site, where=str(path))


def plans_from_toml(text: str, site: Site, *, where: str) -> list[Plan]:
    return plans_from_document(parse_toml(text, where=where, error=TariffError), site, where=where)


def plans_from_document(doc: dict, site: Site, *, where: str) -> list[Plan]:
    _check_keys(doc, {"plans", "funds"}, ("plans",), where, "")  # funds: rating.usage.funds
    plans = doc["plans"]
    if not isinstance(plans, dict) or not plans:
        _fail(where, "plans", "must hold at least one [plans.<id>] table")
    return [_plan(plan_id, raw, site, where) for plan_id, raw in plans.items()]


def _plan(plan_id: str, raw: Any, site: Site, where: str) -> Plan:
    path = f"plans.{plan_id}"
    if not _NAME.match(plan_id):
        _fail(where, path, "a plan id is 1 to 64 of a-z, 0-9 and _")
    table = _check_keys(raw, _PLAN_KEYS, ("fund", "instalments", "first_due", "accounts"), where, path)
    fund = table["fund"]
    if not isinstance(fund, str) or not _NAME.match(fund):
        _fail(where, f"{path}.fund", f"must be a fund name (a-z, 0-9, _), got {fund!r}")
    first_due = table["first_due"]
    if not isinstance(first_due, dt.date) or isinstance(first_due, dt.datetime):
        _fail(where, f"{path}.first_due", f"must be a TOML date (2026-04-10), got {first_due!r}")
    wallet = _wallet(table["wallet"], where, f"{path}.wallet") if "wallet" in table else None
    head = _text(table["head"], where, f"{path}.head") if "head" in table else None
    if wallet is None and head is None:
        _fail(where, path, "needs a wallet (paid from it) or a head (billed under it), or both")
    return Plan(plan_id, fund, _text(table.get("title", plan_id), where, f"{path}.title"),
                _whole(table["instalments"], where, f"{path}.instalments", 1, INSTALMENTS_MAX), first_due,
                _whole(table.get("every_months", 1), where, f"{path}.every_months", 1, 24), wallet, head,
                _accounts(table["accounts"], site, where, f"{path}.accounts"))


def _accounts(raw: Any, site: Site, where: str, path: str) -> dict[str, int]:
    if not isinstance(raw, dict) or not raw:
        _fail(where, path, "must be a table of account = amount, at least one")
    amounts = {}
    for account in sorted(raw):
        value = _number(raw[account], where, f"{path}.{account}", sign="positive")
        units = exact_units(value, site.minor_unit_exponent)
        if units is None or value >= AMOUNT_LIMIT:
            _fail(where, f"{path}.{account}", f"must be below {AMOUNT_LIMIT:,} with at most "
                  f"{site.minor_unit_exponent} decimals (the minor unit), got {raw[account]}")
        amounts[account] = units
    return amounts


def billed_items(plans: list[Plan], table: pa.Table, cycle: Cycle) -> dict[str, list[OneOffItem]]:
    """The items of every plan with a head, due within the cycle, per account (a bill run's `items`)."""
    items: dict[str, list[OneOffItem]] = {}
    for plan in plans:
        if plan.head is not None:
            for account, lines in items_for_cycle(plan, table, cycle).items():
                items.setdefault(account, []).extend(lines)
    return items
