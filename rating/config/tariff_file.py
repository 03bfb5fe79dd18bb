"""Tariff files: TOML in, validated `rating.model.tariff.Tariff` objects out.

The format is documented in docs/tariffs.md. Numbers are read as `Decimal`,
never as binary floats. Every error is a `TariffError` whose `where` names
the file, the tariff version and the field, e.g.
`tariffs.toml: tariff DOM-ELEC (2026-04-01) energy.slabs[2].upto`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

from rating.errors import TariffError
from rating.inputs.textfile import load_toml, parse_toml
from rating.model.site import PRICE_DECIMALS
from rating.model.tariff import (
    DAY_TYPES,
    MINUTES_PER_DAY,
    DayType,
    Package,
    Slab,
    SlabSet,
    Tariff,
    TariffVersion,
    Tax,
    TimeOfUse,
    TouPeriod,
    TouRule,
    component_order,
)

# Prices, amounts and bounds stay below 10^12 so that their 10^-6 units fit
# an int64 with room to spare; bounds may be as fine as the finest site
# quantity resolution (10^-6).
VALUE_LIMIT = Decimal(10) ** 12
BOUND_DECIMALS = 6
MONTHS = tuple(range(1, 13))

_VERSION_KEYS = {
    "id", "name", "unit", "effective_from", "energy", "tou", "fixed_charge",
    "area_charge", "fees", "minimum_charge", "taxes", "prorate", "package", "export",
}
_SLAB_SET_KEYS = {"mode", "limit_basis", "slabs"}
_SLAB_KEYS = {"upto", "width", "price", "fee"}
_TOU_KEYS = {"mode", "periods", "schedules"}
_TOU_PERIOD_KEYS = {"name", "price", "energy", "prices"}
_PACKAGE_KEYS = {"free", "block", "price"}
_SCHEDULE_KEYS = {"months", "day_types", "spans"}
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")

Sign = Literal["any", "non_negative", "positive"]


def load_tariffs(path: str | Path) -> dict[str, Tariff]:
    """Read a tariff file; returns the tariffs by id."""
    path = Path(path)
    return tariffs_from_document(load_toml(path, error=TariffError, what="tariff file"), where=str(path))


def tariffs_from_toml(text: str, *, where: str) -> dict[str, Tariff]:
    """Parse the text of a tariff file; `where` names it in errors."""
    return tariffs_from_document(parse_toml(text, where=where, error=TariffError), where=where)


def tariffs_from_document(doc: dict, *, where: str) -> dict[str, Tariff]:
    """The tariffs of a parsed tariff file."""
    _check_keys(doc, {"tariff"}, ("tariff",), where, "")
    entries = doc["tariff"]
    if not isinstance(entries, list) or not entries:
        _fail(where, "tariff", "must be one or more [[tariff]] tables")
    versions: dict[str, list[tuple[TariffVersion, str]]] = {}
    first_entry: dict[tuple[str, dt.date], int] = {}
    for i, entry in enumerate(entries):
        tariff_id, effective_from = _version_header(entry, where, i)
        at = f"{where}: tariff {tariff_id} ({effective_from.isoformat()})"
        if (tariff_id, effective_from) in first_entry:
            _fail(at, "effective_from",
                  f"duplicates the version in tariff[{first_entry[tariff_id, effective_from]}]; "
                  "each version of a tariff needs its own effective_from")
        first_entry[tariff_id, effective_from] = i
        name = _text(entry.get("name", tariff_id), at, "name")
        versions.setdefault(tariff_id, []).append((_version(entry, at), name))
    tariffs = {}
    for tariff_id, found in versions.items():
        found.sort(key=lambda pair: pair[0].effective_from)
        # A tariff keeps the name of its latest version (tariffs get renamed).
        tariffs[tariff_id] = Tariff(tariff_id, found[-1][1], tuple(v for v, _ in found), source=where)
    return tariffs


# -- errors and scalar fields -------------------------------------------------


def _fail(at: str, path: str, message: str) -> NoReturn:
    raise TariffError(message, where=f"{at} {path}" if path else at)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_keys(table: Any, allowed: set[str], required: tuple[str, ...], at: str, path: str) -> dict:
    if not isinstance(table, dict):
        _fail(at, path, f"must be a table, got {table!r}")
    for key in table:
        if key not in allowed:
            _fail(at, _join(path, key), f"unknown key (expected one of: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in table:
            _fail(at, _join(path, key), "is missing")
    return table


def _number(value: Any, at: str, path: str, *, sign: Sign = "non_negative",
            decimals: int = PRICE_DECIMALS) -> Decimal:
    """A TOML integer or float as an exact Decimal, within range and resolution."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        _fail(at, path, f"must be a number, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        _fail(at, path, f"must be a finite number, got {value}")
    if abs(number) >= VALUE_LIMIT:
        _fail(at, path, f"must be below 10^12 in magnitude, got {value}")
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        _fail(at, path, f"has more than {decimals} decimals: {value}")
    if sign == "positive" and number <= 0:
        _fail(at, path, f"must be positive, got {value}")
    if sign == "non_negative" and number < 0:
        _fail(at, path, f"must not be negative, got {value}")
    return number


def _text(value: Any, at: str, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(at, path, f"must be a non-empty string, got {value!r}")
    return value


def _choice(value: Any, options: tuple[str, ...], at: str, path: str) -> Any:
    if value not in options:
        _fail(at, path, f"must be one of {', '.join(options)}; got {value!r}")
    return value


def _tables(value: Any, at: str, path: str) -> list:
    if not isinstance(value, list) or not value:
        _fail(at, path, "must be a non-empty array of tables")
    return value


def _names(value: Any, at: str, path: str) -> list[str]:
    """A non-empty array of distinct strings."""
    if not isinstance(value, list) or not value:
        _fail(at, path, "must be a non-empty array of strings")
    for j, item in enumerate(value):
        _text(item, at, f"{path}[{j}]")
        if item in value[:j]:
            _fail(at, f"{path}[{j}]", f"repeats {item!r}")
    return value


# -- a tariff version ---------------------------------------------------------


def _version_header(entry: Any, where: str, i: int) -> tuple[str, dt.date]:
    at = f"{where}: tariff[{i}]"
    if not isinstance(entry, dict):
        _fail(at, "", "must be a table ([[tariff]])")
    if "id" not in entry:
        _fail(at, "id", "is missing")
    tariff_id = _text(entry["id"], at, "id")
    effective_from = entry.get("effective_from")
    at = f"{where}: tariff {tariff_id}"
    if effective_from is None:
        _fail(at, "effective_from", "is missing")
    if not isinstance(effective_from, dt.date) or isinstance(effective_from, dt.datetime):
        _fail(at, "effective_from", f"must be a TOML date like 2026-04-01, got {effective_from!r}")
    return tariff_id, effective_from


def _version(entry: dict, at: str) -> TariffVersion:
    _check_keys(entry, _VERSION_KEYS, ("id", "effective_from"), at, "")
    # In tou mode matrix the energy slabs are tiers only: their prices are the periods'.
    matrix = isinstance(entry.get("tou"), dict) and entry["tou"].get("mode") == "matrix"
    energy = _slab_set(entry["energy"], at, "energy", priced=not matrix) if "energy" in entry else None
    tiers = len(energy.slabs) if energy is not None else None
    tou = _time_of_use(entry["tou"], at, tiers=tiers) if "tou" in entry else None
    if "energy" in entry and tou is not None and tou.mode not in ("split_total", "matrix"):
        _fail(at, "energy", f"tou mode {tou.mode!r} prices energy per TOU period; "
              "[tariff.energy] slabs are used only by tou modes split_total and matrix")
    minimum_charge, minimum_on = _minimum(entry.get("minimum_charge"), at)
    version = TariffVersion(
        tariff_id=entry["id"],
        effective_from=entry["effective_from"],
        unit=_text(entry["unit"], at, "unit") if "unit" in entry else "",
        energy=energy,
        tou=tou,
        package=_package(entry["package"], at) if "package" in entry else None,
        export_price=_export(entry, at),
        fixed_charge=_optional_number(entry, "fixed_charge", at),
        area_charge_rate=_optional_number(entry, "area_charge", at),
        fees=_fees(entry.get("fees"), at),
        minimum_charge=minimum_charge,
        minimum_on=minimum_on,
        prorate=_flag(entry.get("prorate", True), at, "prorate"),
    )
    components = component_order(version)
    if not components:
        _fail(at, "", "charges nothing: give at least one of energy, tou, package, export, fixed_charge, "
              "area_charge, fees, minimum_charge")
    if minimum_on is not None:
        _check_components(minimum_on, set(components) - {"minimum_charge"}, at, "minimum_charge.on")
    return dataclasses.replace(version, taxes=_taxes(entry.get("taxes"), at, components))


def _flag(value: Any, at: str, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(at, path, f"must be true or false, got {value!r}")
    return value


def _optional_number(entry: dict, key: str, at: str) -> Decimal | None:
    return _number(entry[key], at, key) if key in entry else None


def _slab_set(raw: Any, at: str, path: str, *, priced: bool = True) -> SlabSet:
    """A slab set; `priced = False` (the tiers of tou mode matrix) forbids prices."""
    _check_keys(raw, _SLAB_SET_KEYS, ("slabs",), at, path)
    mode = _choice(raw.get("mode", "graduated"), ("graduated", "volume"), at, f"{path}.mode")
    basis = _choice(raw.get("limit_basis", "period"), ("period", "per_day"), at, f"{path}.limit_basis")
    rows = _tables(raw["slabs"], at, f"{path}.slabs")
    bound_key = None  # "upto" or "width", whichever the first bounded slab uses
    previous = Decimal(0)
    slabs = []
    for j, row in enumerate(rows):
        here = f"{path}.slabs[{j}]"
        _check_keys(row, _SLAB_KEYS, ("price",) if priced else (), at, here)
        if not priced and "price" in row:
            _fail(at, f"{here}.price", "is not used by tou mode matrix: each (TOU period, tier) "
                  "price is in tou.periods[k].prices")
        given = [key for key in ("upto", "width") if key in row]
        if len(given) == 2:
            _fail(at, here, "gives both upto and width; give one")
        is_last = j == len(rows) - 1
        upper = None
        if not given and not is_last:
            _fail(at, here, "is open (no upto or width) but is not the last slab; "
                  "only the last slab may be open")
        if given:
            key = given[0]
            if is_last:
                _fail(at, f"{here}.{key}", "must not be given: the last slab is open-ended, "
                      "so every quantity has a price")
            if bound_key is not None and key != bound_key:
                _fail(at, f"{here}.{key}", f"mixes {key} with {bound_key} in the slabs before; "
                      f"give every bound as {bound_key}")
            bound_key = key
            value = _number(row[key], at, f"{here}.{key}", sign="positive", decimals=BOUND_DECIMALS)
            if key == "upto" and value == previous:
                _fail(at, f"{here}.upto", f"duplicates the previous bound {previous}")
            if key == "upto" and value < previous:
                _fail(at, f"{here}.upto", f"is below the previous bound {previous}; "
                      "bounds must increase")
            upper = previous + value if key == "width" else value
            if upper >= VALUE_LIMIT:
                _fail(at, f"{here}.{key}", f"puts the bound at {upper}, above 10^12")
            previous = upper
        price = _number(row["price"], at, f"{here}.price") if priced else Decimal(0)
        fee = _number(row.get("fee", 0), at, f"{here}.fee")
        slabs.append(Slab(upper, price, fee))
    return SlabSet(mode, basis, tuple(slabs))


# -- time of use --------------------------------------------------------------


def _time_of_use(raw: Any, at: str, *, tiers: int | None) -> TimeOfUse:
    """`tiers`: the number of [tariff.energy] slabs, None without that table."""
    _check_keys(raw, _TOU_KEYS, ("mode", "periods", "schedules"), at, "tou")
    mode = _choice(raw["mode"], ("price", "slabs", "split_total", "matrix"), at, "tou.mode")
    if mode in ("split_total", "matrix") and tiers is None:
        _fail(at, "tou.mode", f"{mode} prices the energy slabs' tiers per TOU period, "
              "but [tariff.energy] is missing")
    periods = []
    for k, row in enumerate(_tables(raw["periods"], at, "tou.periods")):
        periods.append(_tou_period(row, at, f"tou.periods[{k}]", mode, tiers))
        if periods[-1].name in [p.name for p in periods[:-1]]:
            _fail(at, f"tou.periods[{k}].name", f"repeats the period name {periods[-1].name!r}")
    names = [p.name for p in periods]
    rules = tuple(
        _schedule(row, at, f"tou.schedules[{i}]", names)
        for i, row in enumerate(_tables(raw["schedules"], at, "tou.schedules"))
    )
    _check_coverage(rules, at)
    used = {index for rule in rules for _, _, index in rule.spans}
    for k, name in enumerate(names):
        if k not in used:
            _fail(at, f"tou.periods[{k}]", f"period {name!r} is in no schedule's spans")
    return TimeOfUse(mode, tuple(periods), rules)


def _tou_period(row: Any, at: str, path: str, mode: str, tiers: int | None) -> TouPeriod:
    _check_keys(row, _TOU_PERIOD_KEYS, ("name",), at, path)
    name = _text(row["name"], at, f"{path}.name")
    if mode == "matrix" or "prices" in row:
        return TouPeriod(name, tier_prices=_tier_prices(row, at, path, mode, tiers))
    if mode == "price" and "price" not in row:
        _fail(at, f"{path}.price", "is missing: tou mode price needs every period's price")
    if mode == "slabs" and "energy" not in row:
        _fail(at, f"{path}.energy", "is missing: tou mode slabs needs every period's own slabs")
    if mode != "slabs" and "energy" in row:
        _fail(at, f"{path}.energy", f"is only used by tou mode slabs, not {mode}")
    if mode == "slabs" and "price" in row:
        _fail(at, f"{path}.price", "is not used by tou mode slabs: put prices in the period's slabs")
    price = None
    if "price" in row:
        # In split_total the price is an adder to the slab price and may be negative.
        sign: Sign = "any" if mode == "split_total" else "non_negative"
        price = _number(row["price"], at, f"{path}.price", sign=sign)
    slabs = _slab_set(row["energy"], at, f"{path}.energy") if "energy" in row else None
    return TouPeriod(name, price, slabs)


def _tier_prices(row: dict, at: str, path: str, mode: str, tiers: int | None) -> tuple[Decimal, ...]:
    """A matrix row: one price per energy tier."""
    if mode != "matrix":
        _fail(at, f"{path}.prices", f"is only used by tou mode matrix, not {mode}")
    for key in ("price", "energy"):
        if key in row:
            _fail(at, f"{path}.{key}", "is not used by tou mode matrix: give the period's "
                  "price of each tier in prices")
    prices = row.get("prices")
    if not isinstance(prices, list) or len(prices) != tiers:
        _fail(at, f"{path}.prices", f"must be an array of {tiers} prices, one per [tariff.energy] "
              f"slab, got {prices!r}")
    return tuple(_number(p, at, f"{path}.prices[{j}]") for j, p in enumerate(prices))


def _schedule(row: Any, at: str, path: str, names: list[str]) -> TouRule:
    _check_keys(row, _SCHEDULE_KEYS, ("spans",), at, path)
    months = row.get("months", list(MONTHS))
    if not isinstance(months, list) or not months:
        _fail(at, f"{path}.months", "must be a non-empty array of month numbers 1-12")
    for j, month in enumerate(months):
        if isinstance(month, bool) or month not in MONTHS:
            _fail(at, f"{path}.months[{j}]", f"must be a month number 1-12, got {month!r}")
        if month in months[:j]:
            _fail(at, f"{path}.months[{j}]", f"repeats month {month}")
    day_types = _names(row.get("day_types", list(DAY_TYPES)), at, f"{path}.day_types")
    for j, day_type in enumerate(day_types):
        _choice(day_type, DAY_TYPES, at, f"{path}.day_types[{j}]")
    spans_raw = row["spans"]
    if not isinstance(spans_raw, dict) or not spans_raw:
        _fail(at, f"{path}.spans", "must be a table of TOU period name = [\"HH:MM-HH:MM\", ...]")
    spans = []
    for name, texts in spans_raw.items():
        if name not in names:
            _fail(at, f"{path}.spans.{name}", f"is not a TOU period (periods: {', '.join(names)})")
        if not isinstance(texts, list) or not texts:
            _fail(at, f"{path}.spans.{name}", "must be a non-empty array of \"HH:MM-HH:MM\" spans")
        for j, text in enumerate(texts):
            start, end = _span_minutes(text, at, f"{path}.spans.{name}[{j}]")
            spans.append((start, end, names.index(name), f"{path}.spans.{name}[{j}]"))
    spans.sort()
    _check_day_cover(spans, at, f"{path}.spans")
    return TouRule(frozenset(months), frozenset(cast(list[DayType], day_types)), tuple(s[:3] for s in spans))


def _span_minutes(text: Any, at: str, path: str) -> tuple[int, int]:
    match = _SPAN.match(text) if isinstance(text, str) else None
    if match is None:
        _fail(at, path, f"must be a local time span \"HH:MM-HH:MM\", got {text!r}")
    h0, m0, h1, m1 = (int(g) for g in match.groups())
    if h0 > 23 or m0 > 59 or m1 > 59 or h1 > 24 or (h1 == 24 and m1 != 0):
        _fail(at, path, f"{text!r} is not a valid time of day (00:00 to 24:00)")
    start, end = h0 * 60 + m0, h1 * 60 + m1
    if end <= start:
        _fail(at, path, f"{text!r} ends before it starts; split a span over midnight "
              "in two (\"22:00-24:00\" and \"00:00-06:00\")")
    return start, end


def _check_day_cover(spans: list[tuple[int, int, int, str]], at: str, path: str) -> None:
    """Sorted spans must cover 00:00-24:00 exactly once."""
    reached = 0
    for start, end, _, where in spans:
        if start > reached:
            _fail(at, path, f"leave {_clock(reached)}-{_clock(start)} without a TOU period")
        if start < reached:
            _fail(at, where, f"{_clock(start)}-{_clock(end)} overlaps an earlier span "
                  f"that runs to {_clock(reached)}")
        reached = end
    if reached < MINUTES_PER_DAY:
        _fail(at, path, f"leave {_clock(reached)}-24:00 without a TOU period")


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _check_coverage(rules: tuple[TouRule, ...], at: str) -> None:
    """Every month × day type must fall under exactly one schedule."""
    owner: dict[tuple[int, str], int] = {}
    for i, rule in enumerate(rules):
        for month in sorted(rule.months):
            for day_type in DAY_TYPES:
                if day_type not in rule.day_types:
                    continue
                if (month, day_type) in owner:
                    _fail(at, f"tou.schedules[{i}]", f"month {month} {day_type} is already covered "
                          f"by tou.schedules[{owner[month, day_type]}]")
                owner[month, day_type] = i
    missing = [f"month {m} {d}" for m in MONTHS for d in DAY_TYPES if (m, d) not in owner]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        _fail(at, "tou.schedules", f"no schedule covers {missing[0]}{more}")


# -- other components ---------------------------------------------------------


def _fees(raw: Any, at: str) -> tuple[tuple[str, Decimal], ...]:
    if raw is None:
        return ()
    fees: list[tuple[str, Decimal]] = []
    for i, row in enumerate(_tables(raw, at, "fees")):
        _check_keys(row, {"name", "amount"}, ("name", "amount"), at, f"fees[{i}]")
        name = _text(row["name"], at, f"fees[{i}].name")
        if name in [n for n, _ in fees]:
            _fail(at, f"fees[{i}].name", f"repeats the fee name {name!r}")
        fees.append((name, _number(row["amount"], at, f"fees[{i}].amount")))
    return tuple(fees)


def _package(raw: Any, at: str) -> Package:
    """`[tariff.package]`: `price` per started block of `block` units after `free` units."""
    _check_keys(raw, _PACKAGE_KEYS, ("block", "price"), at, "package")
    return Package(
        free=_number(raw.get("free", 0), at, "package.free", decimals=BOUND_DECIMALS),
        block=_number(raw["block"], at, "package.block", sign="positive", decimals=BOUND_DECIMALS),
        price=_number(raw["price"], at, "package.price"),
    )


def _export(entry: dict, at: str) -> Decimal | None:
    """`[tariff.export] price = ...`: the credit per unit an export register's tariff gives."""
    if "export" not in entry:
        return None
    _check_keys(entry["export"], {"price"}, ("price",), at, "export")
    for other in ("energy", "tou", "package"):
        if other in entry:
            _fail(at, "export", f"credits what an export register measures; a tariff with export "
                  f"has no {other} (give the import meter its own tariff)")
    return _number(entry["export"]["price"], at, "export.price")


def _minimum(raw: Any, at: str) -> tuple[Decimal | None, tuple[str, ...] | None]:
    """`minimum_charge = 100` or `minimum_charge = { amount = 100, on = [...] }`."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        return _number(raw, at, "minimum_charge"), None
    _check_keys(raw, {"amount", "on"}, ("amount",), at, "minimum_charge")
    amount = _number(raw["amount"], at, "minimum_charge.amount")
    on = tuple(_names(raw["on"], at, "minimum_charge.on")) if "on" in raw else None
    return amount, on


def _taxes(raw: Any, at: str, components: tuple[str, ...]) -> tuple[Tax, ...]:
    if raw is None:
        return ()
    taxes: list[Tax] = []
    for i, row in enumerate(_tables(raw, at, "taxes")):
        here = f"taxes[{i}]"
        _check_keys(row, {"name", "percent", "on"}, ("name", "percent", "on"), at, here)
        name = _text(row["name"], at, f"{here}.name")
        if name in [t.name for t in taxes]:
            _fail(at, f"{here}.name", f"repeats the tax name {name!r}")
        percent = _number(row["percent"], at, f"{here}.percent")
        on = tuple(_names(row["on"], at, f"{here}.on"))
        _check_components(on, set(components), at, f"{here}.on")
        taxes.append(Tax(name, percent, on))
    return tuple(taxes)


def _check_components(names: tuple[str, ...], known: set[str], at: str, path: str) -> None:
    for j, name in enumerate(names):
        if name not in known:
            _fail(at, f"{path}[{j}]", f"{name!r} is not a component of this tariff "
                  f"(it has: {', '.join(sorted(known)) or 'none'})")
