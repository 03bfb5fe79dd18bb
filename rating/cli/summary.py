"""A readable per-account summary of a rating run, for the terminal.

Per account (and billing period): one line per meter, tariff and component
with its quantity and amount, the account's total, and its anomalies by
code; then the site's total and every anomaly by code. Amounts are summed
and printed from exact Decimals (Indian digit grouping for INR: 12,34,567.89);
nothing goes through binary floating point.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from rating.config.loader import Config

ACCOUNT_LEVEL = "(account)"  # shown in the meter column of account-level lines
UNKNOWN_ACCOUNT = "(unknown meters)"


@dataclass
class _Period:
    start: object
    end: object
    lines: list[tuple[str, str, str, Decimal | None, str, Decimal]] = field(default_factory=list)


@dataclass
class _Account:
    account_id: str
    name: str
    periods: dict[tuple, _Period] = field(default_factory=dict)
    total: Decimal = Decimal(0)
    anomalies: Counter = field(default_factory=Counter)


def format_money(amount: Decimal, exponent: int, currency: str = "") -> str:
    """`amount` with `exponent` decimals and digit grouping: 1,234,567.89;
    for INR the Indian grouping 12,34,567.89 (lakh, crore)."""
    text = f"{abs(amount):.{exponent}f}"
    whole, _, fraction = text.partition(".")
    if currency == "INR" and len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        whole = ",".join([head, *groups, tail]) if head else ",".join([*groups, tail])
    else:
        whole = f"{int(whole):,}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def account_totals(charges: pa.Table) -> dict[str, Decimal]:
    """The exact sum of the amounts of each account's lines."""
    if charges.num_rows == 0:
        return {}
    grouped = charges.group_by("account_id", use_threads=False).aggregate([("amount", "sum")])
    return dict(zip(grouped.column("account_id").to_pylist(),
                    grouped.column("amount_sum").to_pylist(), strict=True))


def render_summary(
    charges: pa.Table,
    anomalies: pa.Table,
    config: Config,
    *,
    max_accounts: int | None = None,
) -> str:
    """The summary as text. `max_accounts` limits the accounts shown in
    detail (all by default); the site's totals always cover every account."""
    site = config.site
    accounts = _accounts(charges, config)
    site_anomalies, unknown_meters = _count_anomalies(anomalies, accounts, config)
    money = lambda amount: format_money(amount, site.minor_unit_exponent, site.currency)  # noqa: E731
    shown = list(accounts.values())
    hidden = shown[max_accounts:] if max_accounts is not None else []
    shown = shown[:max_accounts] if max_accounts is not None else shown
    unit_of = _by_meter_id(config.registry, config.registry.meter_columns.unit)
    blocks = [_account_block(account, unit_of, money) for account in shown]
    rows = [item for block in blocks for item in block if not isinstance(item, str)]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    grand_total = sum((a.total for a in accounts.values()), Decimal(0))
    out = [f"{site.name}: charges in {site.currency}{_period_range(charges)}",
           f"{len(accounts)} accounts, {charges.num_rows} charge lines, {anomalies.num_rows} anomalies"]
    for block in blocks:
        out.append("")
        out += [item if isinstance(item, str) else _row(item, widths) for item in block]
    if hidden:
        hidden_total = sum((a.total for a in hidden), Decimal(0))
        out += ["", f"... {len(hidden)} more accounts, totalling {money(hidden_total)} "
                    f"(the charges table has every line)"]
    out += ["", f"Site total ({len(accounts)} accounts): {site.currency} {money(grand_total)}",
            "Anomalies: " + (_counts(site_anomalies) if site_anomalies else "none")]
    if unknown_meters:
        out.append("Unknown meters: " + _counts(unknown_meters, unit="readings"))
    return "\n".join(out) + "\n"


def _by_meter_id(registry, values: pa.Array) -> dict[str, str]:
    """A per-meter text column by meter id as text, from the columns (no Meter objects)."""
    return dict(zip(registry.meter_ids.cast(pa.string()).to_pylist(), values.to_pylist(), strict=True))


def _count_anomalies(anomalies: pa.Table, accounts: dict[str, _Account],
                     config: Config) -> tuple[Counter, Counter]:
    """Anomaly counts per code for the site and into each account (adding the
    accounts that have anomalies but no charges); readings of unknown meters apart."""
    registry = config.registry
    account_of = _by_meter_id(registry, registry.meter_accounts)
    site_anomalies: Counter = Counter()
    unknown_meters: Counter = Counter()
    for meter_id, code, count in _anomaly_counts(anomalies):
        site_anomalies[code] += count
        account_id = account_of.get(meter_id)
        if account_id is None:
            unknown_meters[meter_id] += count
            continue
        if account_id not in accounts:
            name = registry.accounts[account_id].name if account_id in registry.accounts else ""
            accounts[account_id] = _Account(account_id, name)
        accounts[account_id].anomalies[code] += count
    return site_anomalies, unknown_meters


def _account_block(account: _Account, unit_of: dict[str, str], money) -> list[tuple[str, ...] | str]:
    """An account's lines: a title, rows (meter, tariff, component, quantity, amount), its total."""
    block: list[tuple[str, ...] | str] = []
    title = f"{account.account_id}  {account.name}".rstrip()
    periods = list(account.periods.values())
    if len(periods) == 1:
        title += f"  [{periods[0].start} .. {periods[0].end}]"
    block.append(title)
    for period in periods:
        if len(periods) > 1:
            block.append(f"  {period.start} .. {period.end}")
        previous: tuple[str | None, str | None] = (None, None)
        for meter, tariff, component, quantity, unit, amount in period.lines:
            same = (meter, tariff) == previous
            previous = (meter, tariff)
            qty = "" if quantity is None else f"{quantity} {unit_of.get(meter, unit)}".rstrip()
            block.append(("" if same else meter, "" if same else tariff, component, qty, money(amount)))
    block.append(("Total", "", "", "", money(account.total)))
    if account.anomalies:
        block.append("  Anomalies: " + _counts(account.anomalies))
    return block


def _row(row: tuple[str, ...], widths: list[int]) -> str:
    meter, tariff, component, qty, amount = row
    text = (f"  {meter:<{widths[0]}}  {tariff:<{widths[1]}}  {component:<{widths[2]}}  "
            f"{qty:>{widths[3]}}  {amount:>{widths[4]}}")
    return text.rstrip()


def _counts(counter: Counter, unit: str = "") -> str:
    suffix = f" {unit}" if unit else ""
    return ", ".join(f"{key} {count}{suffix}" for key, count in sorted(counter.items()))


def _period_range(charges: pa.Table) -> str:
    if charges.num_rows == 0:
        return ""
    first = pc.min(charges.column("period_start")).as_py()
    last = pc.max(charges.column("period_end")).as_py()
    return f", {first} to {last}"


def _accounts(charges: pa.Table, config: Config) -> dict[str, _Account]:
    """Accounts in the order of the charges table, with their lines summed
    per (period, meter, tariff, component) over TOU periods and slabs."""
    accounts: dict[str, _Account] = {}
    if charges.num_rows == 0:
        return accounts
    keys = ["account_id", "period_start", "period_end", "meter_id", "tariff_id", "component"]
    table = charges.select(keys + ["quantity", "amount"]).append_column(
        "position", pa.array(range(charges.num_rows), pa.int64())
    )
    table = table.set_column(
        keys.index("meter_id"), "meter_id",
        pc.fill_null(charges.column("meter_id").cast(pa.string()), ACCOUNT_LEVEL),
    )
    if "group_id" in charges.column_names:  # shared-area lines name their group
        component = charges.column("component")
        labelled = pc.binary_join_element_wise(component, charges.column("group_id"), ":")
        table = table.set_column(keys.index("component"), "component", pc.coalesce(labelled, component))
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [("quantity", "sum"), ("quantity", "count"), ("amount", "sum"), ("position", "min")]
    )
    grouped = grouped.sort_by([("position_min", "ascending")])
    names = config.registry.accounts
    columns = [grouped.column(name).to_pylist() for name in
               keys + ["quantity_sum", "quantity_count", "amount_sum"]]
    # Keep each account's lines together, in the order the engine listed them.
    first_seen: dict[str, int] = {}
    for i, account_id in enumerate(columns[0]):
        first_seen.setdefault(account_id, i)
    order = sorted(range(len(columns[0])), key=lambda i: (first_seen[columns[0][i]], i))
    for i in order:
        account_id, start, end, meter, tariff, component, qty, qty_count, amount = (
            column[i] for column in columns
        )
        account = accounts.get(account_id)
        if account is None:
            name = names[account_id].name if account_id in names else ""
            account = accounts[account_id] = _Account(account_id, name)
        period = account.periods.setdefault((start, end), _Period(start, end))
        period.lines.append((meter, tariff, component, qty if qty_count else None, "", amount))
        account.total += amount
    return accounts


def _anomaly_counts(anomalies: pa.Table) -> list[tuple[str, str, int]]:
    if anomalies.num_rows == 0:
        return []
    table = pa.table({
        "meter_id": anomalies.column("meter_id").cast(pa.string()),
        "code": anomalies.column("code"),
    })
    grouped = table.group_by(["meter_id", "code"], use_threads=False).aggregate(
        [("code", "count")]
    )
    return list(zip(grouped.column("meter_id").to_pylist(), grouped.column("code").to_pylist(),
                    grouped.column("code_count").to_pylist(), strict=True))
