"""Wallets and their policy: thresholds, emergency credit, friendly hours, restore.

An account (a unit) has wallets; each meter debits one (`wallet` in the
meter registry). The policy of each wallet comes from the `[prepaid]` table
of the site file, and an account may set its own in `<wallet>.<setting>`
columns of the accounts table (docs/prepaid.md says how to write both).

A cut-off only ever concerns the utility whose own wallet is exhausted; the
maintenance and special maintenance fund wallets can never cut anything
(collecting property fees by cutting water, power or gas is forbidden in
some jurisdictions: China's Civil Code, art. 944).

`transition` is the state machine of one wallet after a balance change. The
in-process store runs it as written here; the Redis store runs the same rules
in Lua, and the contract tests hold the two to the same results.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any, NamedTuple

import pyarrow as pa

from rating.errors import ConfigError
from rating.model.site import Site

WALLET_KINDS = ("electricity", "water", "gas", "parking", "maintenance", "special_maintenance_fund")
NEVER_CUT = frozenset({"maintenance", "special_maintenance_fund"})
CUT_BY_DEFAULT = frozenset({"electricity", "water", "gas"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_WORDS = frozenset(WEEKDAYS) | {"weekend", "holiday"}
MINUTES_PER_DAY = 24 * 60
# Balances are int64 in the ledger and doubles inside Redis Lua: 2^53 keeps both exact.
AMOUNT_LIMIT_MINOR = 2**53 - 1  # one movement or one batch debit of one wallet
# Every wallet balance and every sum the ledger keeps stays within +-BALANCE_LIMIT_MINOR:
# each ledger checks it in its commit transaction, each store in its atomic step.
BALANCE_LIMIT_MINOR = 2**53 - 1
WALLET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class Status(IntEnum):
    """Wallet states; the numbers are the proto's WalletStatus values and the
    names its enum names (`WALLET_STATUS_<NAME>`)."""

    OK = 1
    LOW = 2
    CUT_OFF_DEFERRED = 3  # exhausted inside friendly hours: the cut-off waits
    CUT_OFF = 4


# The one vocabulary of wallet states in tables, the CLI and docs: the lower-case
# Status names, by value (0: the proto's WALLET_STATUS_UNSPECIFIED).
STATUS_WORDS = ("unspecified", *(s.name.lower() for s in Status))


class EventType(IntEnum):
    """Balance events; the numbers are the proto's EventType values."""

    LOW_BALANCE = 1
    CUT_OFF = 2
    CUT_OFF_DEFERRED = 3
    RESTORED = 4  # a cut-off (or a deferred one) ends
    RECOVERED = 5  # the balance left a warning level (back at or above it)


# The one vocabulary of balance events in tables, the CLI and docs: the lower-case
# EventType names, by value (0: the proto's EVENT_TYPE_UNSPECIFIED).
EVENT_WORDS = ("unspecified", *(e.name.lower() for e in EventType))
LEVELS_MAX = 8  # warning levels per wallet


@dataclass(frozen=True)
class WalletPolicy:
    name: str
    low_balance_minor: int = 0  # the highest warning level: below it the wallet is `low`
    emergency_credit_minor: int = 0
    restore_above_minor: int = 0
    cut_off: bool = False
    friendly_minutes: tuple[tuple[int, int], ...] = ()  # local [start, end) spans; end < start wraps
    friendly_days: frozenset[str] = frozenset()
    # every warning level, highest first (its first is low_balance_minor); () for that one alone
    warning_levels_minor: tuple[int, ...] = ()

    @property
    def levels_minor(self) -> tuple[int, ...]:
        """The warning levels, highest first."""
        return self.warning_levels_minor or (self.low_balance_minor,)

    def levels_below(self, balance_minor: int) -> int:
        """How many warning levels the balance is below (they are the first ones)."""
        return sum(1 for level in self.levels_minor if balance_minor < level)

    def alarm_of(self, status: Status, balance_minor: int) -> int:
        """The alarm of a wallet that has none recorded (new, rebuilt, or from
        before warning levels): none when `ok` (nothing warned yet), every level
        once cut off, else the levels it is below (at least the first)."""
        if status == Status.OK:
            return 0
        if status == Status.LOW:
            return max(1, self.levels_below(balance_minor))
        return len(self.levels_minor)

    @property
    def cut_below_minor(self) -> int:
        """The supply is cut when the balance is below this."""
        return -self.emergency_credit_minor

    def is_friendly(self, now: dt.datetime, site: Site) -> bool:
        """Whether a cut-off at `now` (aware) must wait."""
        local = now.astimezone(site.zone)
        day = local.date()
        words = {WEEKDAYS[day.weekday()]}
        if day.weekday() >= 5:
            words.add("weekend")
        if day in site.holidays:
            words.add("holiday")
        if words & self.friendly_days:
            return True
        minute = local.hour * 60 + local.minute
        for start, end in self.friendly_minutes:
            inside = start <= minute < end if start < end else (minute >= start or minute < end)
            if inside:
                return True
        return False


@dataclass(frozen=True)
class PrepaidPolicy:
    wallets: dict[str, WalletPolicy] = field(default_factory=dict)
    defaults: WalletPolicy = WalletPolicy(name="*")
    account_lines_wallet: str = "maintenance"
    # (account, wallet) -> that account's own policy for the wallet (accounts table columns)
    overrides: dict[tuple[str, str], WalletPolicy] = field(default_factory=dict)
    # a refund is a request that an approver other than the requester approves before money moves
    refund_approval: bool = False

    def of(self, wallet: str, account_id: str = "") -> WalletPolicy:
        """The policy of a wallet: the account's own, else the wallet's table,
        else the defaults (cut-off by kind)."""
        if account_id and self.overrides:
            own = self.overrides.get((account_id, wallet))
            if own is not None:
                return own
        known = self.wallets.get(wallet)
        if known is not None:
            return known
        return replace(self.defaults, name=wallet, cut_off=wallet in CUT_BY_DEFAULT)

    def overrides_of(self, account_ids: list[str], wallets: list[str]) -> dict[tuple[str, str], WalletPolicy]:
        """The accounts' own policies among these (account, wallet) pairs."""
        if not self.overrides:
            return {}
        own = self.overrides
        return {pair: own[pair] for pair in zip(account_ids, wallets, strict=True) if pair in own}


class Moved(NamedTuple):
    """A wallet after a balance change: its state, its alarm (how many warning
    levels have warned, the highest first) and the events of the change, each
    with the level it concerns (0 for cut-off events)."""

    status: Status
    alarm: int
    events: list[tuple[EventType, int]]


def transition(policy: WalletPolicy, status: Status, balance_minor: int, friendly: bool, alarm: int) -> Moved:
    """A wallet's next state after its balance became `balance_minor`.
    `friendly`: a cut-off now must wait; `alarm`: the levels that have warned
    (a wallet with none recorded: policy.alarm_of its state and balance before the change).
    A level warns once when the balance falls below it and recovers once when
    the balance is back at or above it; a cut-off warns every level not yet
    warned, and a cut-off wallet recovers nothing until it is restored."""
    levels = policy.levels_minor
    if policy.cut_off and balance_minor < policy.cut_below_minor:
        if status in (Status.OK, Status.LOW):
            warned = _warn(levels, alarm, len(levels))
            if friendly:
                return Moved(Status.CUT_OFF_DEFERRED, len(levels), warned + [(EventType.CUT_OFF_DEFERRED, 0)])
            return Moved(Status.CUT_OFF, len(levels), warned + [(EventType.CUT_OFF, 0)])
        if status == Status.CUT_OFF_DEFERRED and not friendly:
            return Moved(Status.CUT_OFF, alarm, [(EventType.CUT_OFF, 0)])
        return Moved(status, alarm, [])
    if status == Status.CUT_OFF and balance_minor < policy.restore_above_minor:
        return Moved(status, alarm, [])
    # a deferred cut-off back in credit is restored before its cut-off happened
    events = [(EventType.RESTORED, 0)] if status in (Status.CUT_OFF, Status.CUT_OFF_DEFERRED) else []
    below = policy.levels_below(balance_minor)
    events += _warn(levels, alarm, below)
    events += [(EventType.RECOVERED, levels[k]) for k in range(alarm - 1, below - 1, -1)]  # lowest first
    return Moved(Status.LOW if below else Status.OK, below, events)


def _warn(levels: tuple[int, ...], alarm: int, below: int) -> list[tuple[EventType, int]]:
    """The low-balance events of the levels from `alarm` to `below`, highest first."""
    return [(EventType.LOW_BALANCE, levels[k]) for k in range(alarm, below)]


def status_after_rebuild(policy: WalletPolicy, last_event: EventType | None, balance_minor: int) -> Status:
    """A wallet's state from its balance and its last event (rebuilding a store)."""
    if last_event == EventType.CUT_OFF:
        return Status.CUT_OFF
    if last_event == EventType.CUT_OFF_DEFERRED:
        return Status.CUT_OFF_DEFERRED
    return Status.LOW if balance_minor < policy.low_balance_minor else Status.OK


def check_wallet_name(name: str) -> str:
    if not isinstance(name, str) or not WALLET_NAME.match(name):
        raise ValueError(f"wallet name {name!r} must be 1-64 of a-z, 0-9 and _, starting with a letter")
    return name


# ---- reading the [prepaid] table --------------------------------------------------------------

_POLICY_KEYS = {"low_balance", "emergency_credit", "restore_above", "cut_off", "friendly_hours",
                "friendly_days"}
_PREPAID_KEYS = {"account_lines_wallet", "defaults", "wallets", "refund_approval"}


def policy_from_mapping(data: dict | None, site: Site, *, where: str = "[prepaid]") -> PrepaidPolicy:
    """Build the policy from a site file's `[prepaid]` table (absent: defaults)."""
    if data is None:
        return PrepaidPolicy()
    if not isinstance(data, dict):
        raise ConfigError("must be a table", where=where)
    unknown = sorted(set(data) - _PREPAID_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {sorted(_PREPAID_KEYS)}", where=where)
    lines_wallet = data.get("account_lines_wallet", "maintenance")
    try:
        check_wallet_name(lines_wallet)
    except ValueError as exc:
        raise ConfigError(str(exc), where=f"{where}.account_lines_wallet") from None
    defaults = _wallet_policy("*", data.get("defaults", {}), WalletPolicy(name="*"), site,
                              where=f"{where}.defaults")
    wallets = {}
    tables = data.get("wallets", {})
    if not isinstance(tables, dict):
        raise ConfigError("must be a table of wallet tables", where=f"{where}.wallets")
    for name, table in tables.items():
        at = f"{where}.wallets.{name}"
        try:
            check_wallet_name(name)
        except ValueError as exc:
            raise ConfigError(str(exc), where=at) from None
        base = replace(defaults, name=name, cut_off=name in CUT_BY_DEFAULT)
        wallets[name] = _wallet_policy(name, table, base, site, where=at)
    approval = data.get("refund_approval", False)
    if not isinstance(approval, bool):
        raise ConfigError(f"must be true or false, got {approval!r}", where=f"{where}.refund_approval")
    return PrepaidPolicy(wallets=wallets, defaults=defaults, account_lines_wallet=lines_wallet,
                         refund_approval=approval)


ACCOUNT_POLICY_KEYS = ("low_balance", "emergency_credit", "restore_above", "cut_off")


def with_account_overrides(policy: PrepaidPolicy, accounts: pa.Table, site: Site, *,
                           where: str = "accounts") -> PrepaidPolicy:
    """`policy` with the accounts' own wallet policies: optional columns of the
    accounts table named `<wallet>.<key>` (`electricity.emergency_credit`), a
    key of ACCOUNT_POLICY_KEYS; an empty cell keeps the site's value. Friendly
    hours and days stay the site's."""
    columns: dict[str, list[tuple[str, str]]] = {}  # wallet -> [(key, column name)]
    for name in accounts.column_names:
        wallet, dot, key = name.partition(".")
        if not dot:
            continue
        if key not in ACCOUNT_POLICY_KEYS:
            raise ConfigError(f"unknown wallet setting {key!r} in column {name!r}; an account may set "
                              f"{', '.join(ACCOUNT_POLICY_KEYS)}", where=where)
        try:
            check_wallet_name(wallet)
        except ValueError as exc:
            raise ConfigError(f"column {name!r}: {exc}", where=where) from None
        columns.setdefault(wallet, []).append((key, name))
    if not columns:
        return policy
    ids = accounts.column("account_id").to_pylist()
    cells = {name: accounts.column(name).to_pylist() for pairs in columns.values() for _, name in pairs}
    overrides = {}
    for row, account_id in enumerate(ids):
        for wallet, pairs in columns.items():
            given = {key: _cell(cells[name][row]) for key, name in pairs}
            table = {key: value for key, value in given.items() if value is not None}
            if table:
                at = f"{where} row {row + 1} ({account_id}), {wallet}"
                overrides[(str(account_id), wallet)] = _wallet_policy(wallet, table, policy.of(wallet), site,
                                                                      where=at)
    return replace(policy, overrides=overrides)


def _cell(value):
    """An accounts-table cell as a policy value: text from CSV, None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        return {"true": True, "false": False}.get(text, value.strip())
    return value


def _wallet_policy(name: str, table, base: WalletPolicy, site: Site, *, where: str) -> WalletPolicy:
    if not isinstance(table, dict):
        raise ConfigError("must be a table", where=where)
    unknown = sorted(set(table) - _POLICY_KEYS)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {sorted(_POLICY_KEYS)}", where=where)
    values: dict[str, Any] = {}  # WalletPolicy fields, each checked as it is read
    if "low_balance" in table:
        levels = _levels_minor(table["low_balance"], site, where=f"{where}.low_balance")
        values["low_balance_minor"] = levels[0]
        values["warning_levels_minor"] = levels if len(levels) > 1 else ()
    for key, attr in (("emergency_credit", "emergency_credit_minor"),
                      ("restore_above", "restore_above_minor")):
        if key in table:
            values[attr] = _money_minor(table[key], site, where=f"{where}.{key}")
    if values.get("emergency_credit_minor", 0) < 0:
        raise ConfigError("must be >= 0", where=f"{where}.emergency_credit")
    if "cut_off" in table:
        if not isinstance(table["cut_off"], bool):
            raise ConfigError("must be true or false", where=f"{where}.cut_off")
        values["cut_off"] = table["cut_off"]
    if "friendly_hours" in table:
        values["friendly_minutes"] = _spans(table["friendly_hours"], where=f"{where}.friendly_hours")
    if "friendly_days" in table:
        values["friendly_days"] = _days(table["friendly_days"], where=f"{where}.friendly_days")
    policy = replace(base, **values)
    if policy.cut_off and name in NEVER_CUT:
        raise ConfigError(
            f"the {name} wallet cannot cut a supply: a cut-off only concerns the utility whose own "
            "wallet is exhausted, never other dues (e.g. China's Civil Code, art. 944)",
            where=f"{where}.cut_off",
        )
    if policy.restore_above_minor < policy.cut_below_minor:
        raise ConfigError("restore_above must be at least -emergency_credit", where=f"{where}.restore_above")
    return policy


def _levels_minor(value, site: Site, *, where: str) -> tuple[int, ...]:
    """One warning level, or several (a list; "500;100" in an accounts table's
    cell), highest first."""
    if isinstance(value, str) and ";" in value:
        value = [part.strip() for part in value.split(";")]
    if not isinstance(value, list):
        return (_money_minor(value, site, where=where),)
    if not 1 <= len(value) <= LEVELS_MAX:
        raise ConfigError(f"must be a level or a list of 1 to {LEVELS_MAX} levels, got {len(value)}",
                          where=where)
    levels = [_money_minor(v, site, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if len(set(levels)) != len(levels):
        raise ConfigError(f"a level is listed twice: {value!r}", where=where)
    return tuple(sorted(levels, reverse=True))


def _money_minor(value, site: Site, *, where: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"not a number: {value!r}", where=where) from None
    if isinstance(value, bool) or not amount.is_finite():
        raise ConfigError(f"not a number: {value!r}", where=where)
    minor = amount.scaleb(site.minor_unit_exponent)
    if minor != minor.to_integral_value():
        raise ConfigError(f"{value} has more decimals than the currency's minor unit", where=where)
    if abs(minor) > AMOUNT_LIMIT_MINOR:
        raise ConfigError(f"{value} is out of range", where=where)
    return int(minor)


def _spans(value, *, where: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise ConfigError('must be a list of "HH:MM-HH:MM" spans', where=where)
    spans = []
    for i, text in enumerate(value):
        match = _SPAN.match(str(text))
        if not match:
            raise ConfigError(f'{text!r} is not "HH:MM-HH:MM"', where=f"{where}[{i}]")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or end > MINUTES_PER_DAY or start == end:
            raise ConfigError(f"{text!r} is not a span of the day", where=f"{where}[{i}]")
        spans.append((start, end))
    return tuple(spans)


def _days(value, *, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("must be a list of day names", where=where)
    bad = sorted(set(value) - DAY_WORDS)
    if bad:
        raise ConfigError(f"unknown day(s) {bad}; use weekday names, 'weekend' or 'holiday'", where=where)
    return frozenset(value)
