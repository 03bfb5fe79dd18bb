"""Apportionment groups: which units share which common consumption, and how.

A group names its members (units, i.e. account ids, with an optional floor
area and weight each), where its common consumption comes from (common-area
meters, or a master meter minus its sub-meters), the method that weighs the
members, whether the quantity or the cost is split, and what to do with
each kind of problem. docs/apportionment.md documents the file format and
the meaning of every field; `rating.apportion` applies the groups.

The file (CSV, Parquet or Arrow) has one row per member:

    group_id,account_id,area,weight,method,basis,common_meters,master_meter,sub_meters,...
    tower-A-lift,A-101,92.5,,area,cost,LIFT-A,,
    tower-A-lift,A-102,120,,,,,,

Group-level columns may be repeated on every row of a group or given once;
two different values in one group are an error that names both rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa

from rating.errors import InputError
from rating.inputs.tables import read_table

METHODS = ("area", "consumption", "equal", "weight", "mixed")
BASES = ("quantity", "cost")
# Policy field -> its allowed values; the first is the default.
POLICIES: Mapping[str, tuple[str, ...]] = {
    "on_negative": ("report", "clamp"),
    "on_zero_weights": ("report", "equal"),
    "on_missing_area": ("report", "zero", "equal"),
    "on_unknown_unit": ("report", "exclude"),
}
WEIGHT_DECIMALS = 6  # areas and weights are exact at 10^-6
WEIGHT_MAX = Decimal(10) ** 12  # one member's area or weight
LIST_SEPARATOR = ";"
MEMBERS_MAX = 10_000_000  # members of one group

MeterId = str | int


@dataclass(frozen=True)
class Member:
    """A unit (account id) in a group. `area` overrides the account's area
    from the registry; `weight` is used by the `weight` method."""

    account_id: str
    area: Decimal | None = None
    weight: Decimal | None = None


@dataclass(frozen=True)
class Group:
    group_id: str
    members: tuple[Member, ...]
    method: str = "area"
    basis: str = "cost"
    common_meters: tuple[MeterId, ...] = ()
    master_meter: MeterId | None = None
    sub_meters: tuple[MeterId, ...] | None = None  # None: the members' meters of meter_unit
    meter_unit: str | None = None  # None: the unit of the (first) source meter
    on_negative: str = "report"
    on_zero_weights: str = "report"
    on_missing_area: str = "report"
    on_unknown_unit: str = "report"
    area_percent: Decimal | None = None  # method mixed: the percent split by area, the rest by consumption

    def __post_init__(self) -> None:
        where = f"group {self.group_id!r}"
        if not self.group_id:
            raise InputError("group_id is empty")
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}", where=where)
        if self.basis not in BASES:
            raise InputError(f"basis must be one of {', '.join(BASES)}, got {self.basis!r}", where=where)
        for name, allowed in POLICIES.items():
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}", where=where
                )
        self._check_mixed(where)
        if bool(self.common_meters) == (self.master_meter is not None):
            raise InputError("give either common_meters or a master_meter (with sub_meters)", where=where)
        if self.sub_meters is not None and self.master_meter is None:
            raise InputError("sub_meters need a master_meter", where=where)
        if self.master_meter is not None and self.master_meter in (self.sub_meters or ()):
            raise InputError(f"master meter {self.master_meter!r} is also a sub-meter", where=where)
        for label, meters in (("common_meters", self.common_meters), ("sub_meters", self.sub_meters or ())):
            if len(set(meters)) != len(meters):
                raise InputError(f"{label} lists a meter twice", where=where)
        if not self.members:
            raise InputError("has no members", where=where)
        if len(self.members) > MEMBERS_MAX:
            raise InputError(f"has more than {MEMBERS_MAX} members", where=where)
        ids = [m.account_id for m in self.members]
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise InputError(f"unit {dup!r} is a member twice", where=where)
        for m in self.members:
            at = f"{where} unit {m.account_id!r}"
            _check_amount(m.area, "area", at)
            _check_amount(m.weight, "weight", at)
            if self.method == "weight" and m.weight is None:
                raise InputError("weight is empty (method 'weight')", where=at)

    def _check_mixed(self, where: str) -> None:
        if self.method != "mixed":
            if self.area_percent is not None:
                raise InputError("area_percent is only used by method 'mixed'", where=f"{where} area_percent")
            return
        if self.area_percent is None:
            raise InputError("is missing: method 'mixed' splits area_percent of the cost by area "
                             "and the rest by consumption", where=f"{where} area_percent")
        if not Decimal(0) <= self.area_percent <= Decimal(100):
            raise InputError(f"must be a percent in 0..100, got {self.area_percent}",
                             where=f"{where} area_percent")
        if self.area_percent != self.area_percent.quantize(Decimal(1).scaleb(-WEIGHT_DECIMALS)):
            raise InputError(f"has more than {WEIGHT_DECIMALS} decimals: {self.area_percent}",
                             where=f"{where} area_percent")
        if self.basis != "cost":
            raise InputError("method 'mixed' splits a cost: basis must be cost", where=f"{where} basis")

    @property
    def source_meters(self) -> tuple[MeterId, ...]:
        """The meters whose consumption (or cost) this group splits."""
        return self.common_meters if self.master_meter is None else (self.master_meter,)


def _check_amount(value: Decimal | None, name: str, where: str) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0 or value > WEIGHT_MAX:
        raise InputError(f"{name} must be a number in 0..{WEIGHT_MAX}, got {value!r}", where=where)
    if value != value.quantize(Decimal(1).scaleb(-WEIGHT_DECIMALS)):
        raise InputError(f"{name} has more than {WEIGHT_DECIMALS} decimals: {value}", where=where)


@dataclass(frozen=True)
class Groups:
    """Every apportionment group of a site, ids unique."""

    groups: tuple[Group, ...] = ()
    where: str = "groups"
    _by_id: dict[str, Group] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Group] = {}
        source_of: dict[MeterId, str] = {}
        for g in self.groups:
            if g.group_id in by_id:
                raise InputError(f"duplicate group_id {g.group_id!r}", where=self.where)
            by_id[g.group_id] = g
            for meter in g.source_meters:
                if meter in source_of:
                    # Two groups splitting one meter would bill its consumption twice.
                    raise InputError(
                        f"meter {meter!r} is the source of groups {source_of[meter]!r} and {g.group_id!r}",
                        where=self.where,
                    )
                source_of[meter] = g.group_id
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def of(cls, groups: Iterable[Group]) -> Groups:
        return cls(tuple(groups))

    def __iter__(self) -> Iterator[Group]:
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, group_id: str) -> Group:
        return self._by_id[group_id]


# -- reading a groups file ------------------------------------------------------

_MEMBER_COLUMNS = ("group_id", "account_id", "area", "weight")
_GROUP_COLUMNS = (
    "method", "basis", "common_meters", "master_meter", "sub_meters", "meter_unit", "area_percent", *POLICIES,
)


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # Parquet list columns
        return LIST_SEPARATOR.join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _parsed(text: str | None, what: str, where: str) -> Decimal | None:
    """A cell's text as a Decimal (None when blank); `what` begins the error."""
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InputError(f"{what} is not a number: {text!r}".lstrip(), where=where) from None


def _decimal(value, name: str, where: str) -> Decimal | None:
    number = _parsed(_text(value), name, where)
    if number is not None:
        _check_amount(number, name, where)
    return number


def _percent(text: str | None, where: str) -> Decimal | None:
    number = _parsed(text, "", where)
    if number is not None and not number.is_finite():
        raise InputError(f"must be a percent in 0..100, got {text!r}", where=where)
    return number


def _meter_list(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return tuple(part.strip() for part in text.split(LIST_SEPARATOR) if part.strip())


def groups_from_table(table: pa.Table, *, where: str = "groups") -> Groups:
    """Groups from a member table (one row per member, group settings as
    columns). Meter ids stay strings here; `rating.apportion` matches them to
    the registry's ids."""
    _check_columns(table, where)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    members: dict[str, list[Member]] = {}
    settings: dict[str, dict[str, tuple[str, int]]] = {}
    for row in range(table.num_rows):
        at = f"{where} row {row + 1}"
        group_id = _text(columns["group_id"][row])
        account_id = _text(columns["account_id"][row])
        if group_id is None:
            raise InputError("group_id is empty", where=at)
        if account_id is None:
            raise InputError("account_id is empty", where=at)
        members.setdefault(group_id, []).append(
            Member(
                account_id=account_id,
                area=_decimal(columns["area"][row], "area", at) if "area" in columns else None,
                weight=_decimal(columns["weight"][row], "weight", at) if "weight" in columns else None,
            )
        )
        _add_settings(settings.setdefault(group_id, {}), group_id, columns, row, where)
    groups = [_group(group_id, group_members, settings[group_id], where)
              for group_id, group_members in members.items()]
    return Groups(tuple(groups), where=where)


def _check_columns(table: pa.Table, where: str) -> None:
    for required in ("group_id", "account_id"):
        if required not in table.column_names:
            raise InputError(f"missing column {required!r}", where=where)
    unknown = sorted(set(table.column_names) - set(_MEMBER_COLUMNS) - set(_GROUP_COLUMNS))
    if unknown:
        raise InputError(
            f"unknown column(s) {unknown}; known: {', '.join(_MEMBER_COLUMNS + _GROUP_COLUMNS)}",
            where=where,
        )


def _add_settings(mine: dict[str, tuple[str, int]], group_id: str, columns: dict[str, list],
                  row: int, where: str) -> None:
    """A member row's group settings: every row of a group that gives one must agree."""
    for name in _GROUP_COLUMNS:
        if name not in columns:
            continue
        value = _text(columns[name][row])
        if value is None:
            continue
        if name in mine and mine[name][0] != value:
            raise InputError(
                f"group {group_id!r} has {name} {mine[name][0]!r} on row {mine[name][1]} "
                f"and {value!r} on row {row + 1}",
                where=where,
            )
        mine[name] = (value, row + 1)


def _group(group_id: str, members: list[Member], settings: dict[str, tuple[str, int]],
           where: str) -> Group:
    given = {name: value for name, (value, _row) in settings.items()}
    subs = given.pop("sub_meters", None)
    common = given.pop("common_meters", None)
    percent = given.pop("area_percent", None)
    try:
        return Group(
            group_id=group_id,
            members=tuple(members),
            common_meters=_meter_list(common),
            sub_meters=None if subs is None else _meter_list(subs),
            area_percent=_percent(percent, f"group {group_id!r} area_percent"),
            **given,
        )
    except InputError as exc:
        raise InputError(exc.message, where=f"{where} {exc.where or ''}".strip()) from None


def load_groups(path: str | Path) -> Groups:
    """Read a groups file (CSV, Parquet or Arrow); see the module docstring."""
    return groups_from_table(read_table(path, strings=True), where=str(path))
