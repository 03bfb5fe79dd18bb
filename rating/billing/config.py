"""Reading `billing.toml`, the file beside the site file that holds the
site's charge heads, late fee and interest rules, taxes and rounding-off.

Read once per run (`load_billing`); drafting a bill then only looks values
up. Every error names the file and the key (`billing.toml[heads.parking].rate`)
and nothing is loaded. Amounts are in the site's currency (major units,
exact at its minor unit); rates and percentages are exact at 10^-6. The
format, with a worked example per rule: docs/billing.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from rating.billing.documents import Occupancy
from rating.billing.money import major
from rating.billing.rules import (
    RATE_DECIMALS,
    Applies,
    BillingConfig,
    Head,
    HeadKind,
    InterestRule,
    Method,
    RoundOff,
    TaxPart,
    TaxRule,
    Turnover,
)
from rating.errors import ConfigError
from rating.fixedpoint import exact_units
from rating.inputs.textfile import load_toml
from rating.model.site import ROUNDING_RULES, Site

E = TypeVar("E", bound=StrEnum)
BILLING_FILE = "billing.toml"
AMOUNT_MAX = Decimal(10) ** 12
PERCENT_MAX = Decimal(100)
NON_OCCUPANCY_RATE_MAX = Decimal(10)  # e.g. Maharashtra: at most 10 % of the service charges
SERVICE_KINDS = (HeadKind.AREA, HeadKind.FIXED, HeadKind.COUNT, HeadKind.FUND)
PRORATED_KINDS = SERVICE_KINDS

_COMMON = {"kind", "title", "rounding", "tags", "occupancy", "from", "until"}
_HEAD_KEYS = {
    HeadKind.AREA: _COMMON | {"rate", "prorate", "area_unit"},
    HeadKind.FIXED: _COMMON | {"rate", "prorate"},
    HeadKind.COUNT: _COMMON | {"rate", "prorate", "count"},
    HeadKind.FUND: _COMMON | {"rate", "prorate", "cost_per_area", "area_unit"},
    HeadKind.NON_OCCUPANCY: _COMMON | {"rate", "of", "amount_max", "rate_max"},
    HeadKind.METERED: {"kind", "title", "tariffs"},  # the rated lines, as rated: no rounding or filter
    HeadKind.SHARE: {"kind", "title", "groups"},
    HeadKind.ITEM: {"kind", "title"},
}
_INTEREST_KEYS = {"method", "head", "title", "rate", "amount", "grace_days", "grace_for",
                  "interest_from", "minimum_outstanding", "amount_max", "rate_max", "on", "on_interest",
                  "compounding", "once", "rounding"}
_TAX_KEYS = {"parts", "rate", "on", "pass_through", "threshold_monthly", "taxed", "turnover",
             "rounding", "invoice"}
_TOP_KEYS = {"billing", "heads", "interest", "taxes", "round_off"}
_BILLING_KEYS = {"rounding", "due_days", "prepaid_tariffs", "rated_only_tariffs"}


def billing_path(site_file: str | Path) -> Path:
    """The billing file of a site file: `billing.toml` in its folder."""
    return Path(site_file).parent / BILLING_FILE


def load_billing(path: str | Path, site: Site) -> BillingConfig:
    """Read and check a billing file."""
    path = Path(path)
    return billing_from_mapping(load_toml(path, error=ConfigError, what="billing file"),
                                where=str(path), site=site)


def billing_from_mapping(doc: dict, *, where: str, site: Site) -> BillingConfig:
    """A BillingConfig from a parsed billing file; `where` names the file."""
    _keys(doc, _TOP_KEYS, where)
    general = _table(doc, "billing", where)
    _keys(general, _BILLING_KEYS, f"{where}[billing]")
    rounding = _rounding(general, "half_up", f"{where}[billing]")
    heads = {name: _head(name, _table_value(value, f"{where}[heads.{name}]"), f"{where}[heads.{name}]",
                         site, rounding)
             for name, value in _table(doc, "heads", where).items()}
    interest = tuple(_interest(name, _table_value(value, f"{where}[interest.{name}]"),
                               f"{where}[interest.{name}]", site, rounding)
                     for name, value in _table(doc, "interest", where).items())
    taxes = tuple(_tax(name, _table_value(value, f"{where}[taxes.{name}]"), f"{where}[taxes.{name}]",
                       site, rounding)
                  for name, value in _table(doc, "taxes", where).items())
    round_off = None
    if "round_off" in doc:
        round_off = _round_off(_table(doc, "round_off", where), f"{where}[round_off]", site, rounding)
    due_days = _whole(general.get("due_days", 15), f"{where}[billing].due_days", 0, 366)
    prepaid = frozenset(_names(general.get("prepaid_tariffs", []), f"{where}[billing].prepaid_tariffs"))
    rated_only = _names(general.get("rated_only_tariffs", []), f"{where}[billing].rated_only_tariffs")
    for i, tariff in enumerate(rated_only):
        if tariff in prepaid:
            raise ConfigError(f"tariff {tariff!r} is prepaid too ([billing].prepaid_tariffs): it is either "
                              "debited from a wallet or left out, not both",
                              where=f"{where}[billing].rated_only_tariffs[{i}]")
    config = BillingConfig(path=where, site=site, heads=heads, interest=interest, taxes=taxes,
                           round_off=round_off, due_days=due_days, prepaid_tariffs=prepaid,
                           rated_only_tariffs=frozenset(rated_only))
    _check_references(config, where)
    return config


def _head(name: str, data: dict, where: str, site: Site, rounding: str) -> Head:
    kind = _choice(data.get("kind"), HeadKind, f"{where}.kind")
    _keys(data, _HEAD_KEYS[kind], where)
    values: dict = {"name": name, "kind": kind, "where": where,
                    "title": _text(data.get("title", _title(name)), f"{where}.title"),
                    "rounding": _rounding(data, rounding, where), "applies": _applies(data, where)}
    if "rate" in _HEAD_KEYS[kind]:
        if "rate" not in data:
            raise ConfigError("missing key 'rate'", where=f"{where}.rate")
        top = PERCENT_MAX if kind in (HeadKind.FUND, HeadKind.NON_OCCUPANCY) else AMOUNT_MAX
        values["rate"], values["rate_u"] = rate_units(data["rate"], where=f"{where}.rate", maximum=top)
    if kind in PRORATED_KINDS:
        values["prorate"] = _flag(data.get("prorate", True), f"{where}.prorate")
    if kind in (HeadKind.AREA, HeadKind.FUND):
        values["area_unit"] = _text(data.get("area_unit", "m²"), f"{where}.area_unit")
    if kind is HeadKind.COUNT:
        values["count"] = _text(data.get("count", name), f"{where}.count")
    elif kind is HeadKind.FUND and "cost_per_area" in data:
        values["cost_per_area"], values["cost_per_area_u"] = rate_units(data["cost_per_area"],
                                                                        where=f"{where}.cost_per_area")
    elif kind is HeadKind.NON_OCCUPANCY:
        values["of"] = _names(data.get("of"), f"{where}.of", required=True)
        if "occupancy" not in data:  # charged on units let out unless the file says otherwise
            values["applies"] = replace(values["applies"], occupancy=frozenset({Occupancy.LET_OUT}))
        top, _ = rate_units(data.get("rate_max", NON_OCCUPANCY_RATE_MAX), where=f"{where}.rate_max",
                            maximum=PERCENT_MAX)
        if values["rate"] > top:
            raise ConfigError(f"a non-occupancy charge is at most {top} % of the service charges, "
                              f"got {values['rate']} (set rate_max where the law allows more)",
                              where=f"{where}.rate")
        if "amount_max" in data:
            values["amount_max_minor"] = amount_minor(data["amount_max"], site, where=f"{where}.amount_max")
    elif kind is HeadKind.METERED:
        values["tariffs"] = _names(data.get("tariffs"), f"{where}.tariffs", required=True)
    elif kind is HeadKind.SHARE:
        values["groups"] = _names(data.get("groups"), f"{where}.groups", required=True)
    return Head(**values)


def _interest(name: str, data: dict, where: str, site: Site, rounding: str) -> InterestRule:
    _keys(data, _INTEREST_KEYS, where)
    method = _choice(data.get("method"), Method, f"{where}.method")
    values: dict = {"name": name, "method": method, "where": where,
                    "head": _text(data.get("head", name), f"{where}.head"),
                    "title": _text(data.get("title", _title(name)), f"{where}.title"),
                    "rounding": _rounding(data, rounding, where)}
    if method in (Method.SIMPLE_DAILY, Method.MONTHLY_PERCENT):
        if "rate" not in data:
            raise ConfigError("missing key 'rate' (percent)", where=f"{where}.rate")
        values["rate"], values["rate_u"] = rate_units(data["rate"], where=f"{where}.rate",
                                                      maximum=PERCENT_MAX)
    else:
        if "amount" not in data:
            raise ConfigError("missing key 'amount'", where=f"{where}.amount")
        values["amount_minor"] = amount_minor(data["amount"], site, where=f"{where}.amount")
    values["grace_days"] = _whole(data.get("grace_days", 0), f"{where}.grace_days", 0, 366)
    values["grace_for"] = _one_of(data.get("grace_for", "all"), ("all", "current"), f"{where}.grace_for")
    values["interest_from"] = _one_of(data.get("interest_from", "due_date"), ("due_date", "grace_end"),
                                      f"{where}.interest_from")
    values["compounding"] = _one_of(data.get("compounding", "none"), ("none", "annual"),
                                    f"{where}.compounding")
    if values["compounding"] != "none" and method is not Method.SIMPLE_DAILY:
        raise ConfigError("only a simple_daily rule compounds", where=f"{where}.compounding")
    values["once"] = _flag(data.get("once", False), f"{where}.once")
    if values["once"] and method is not Method.FLAT:
        raise ConfigError("only a flat late fee is charged once", where=f"{where}.once")
    values["on_interest"] = _flag(data.get("on_interest", False), f"{where}.on_interest")
    values["on_heads"] = _names(data.get("on", []), f"{where}.on")
    if "minimum_outstanding" in data:
        values["minimum_outstanding_minor"] = amount_minor(data["minimum_outstanding"], site,
                                                           where=f"{where}.minimum_outstanding")
    if "amount_max" in data:
        values["amount_max_minor"] = amount_minor(data["amount_max"], site, where=f"{where}.amount_max")
    if "rate_max" in data:
        values["rate_max"], values["rate_max_u"] = rate_units(data["rate_max"], where=f"{where}.rate_max",
                                                              maximum=PERCENT_MAX * 12)
    return InterestRule(**values)


def _tax(name: str, data: dict, where: str, site: Site, rounding: str) -> TaxRule:
    _keys(data, _TAX_KEYS, where)
    if ("parts" in data) == ("rate" in data):
        raise ConfigError("give either 'rate' or 'parts'", where=where)
    if "rate" in data:
        rate, rate_u = rate_units(data["rate"], where=f"{where}.rate", maximum=PERCENT_MAX)
        parts: tuple[TaxPart, ...] = (TaxPart(name, name.upper(), rate, rate_u),)
    else:
        raw = data["parts"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError("must be a non-empty array of {name, title, rate}", where=f"{where}.parts")
        parts = tuple(_tax_part(part, f"{where}.parts[{i}]") for i, part in enumerate(raw))
    values: dict = {"name": name, "where": where, "parts": parts,
                    "on_heads": _names(data.get("on"), f"{where}.on", required=True),
                    "pass_through": _names(data.get("pass_through", []), f"{where}.pass_through"),
                    "rounding": _rounding(data, rounding, where)}
    if "threshold_monthly" in data:
        values["threshold_monthly_minor"] = amount_minor(data["threshold_monthly"], site,
                                                         where=f"{where}.threshold_monthly")
    taxed = _one_of(data.get("taxed", "whole"), ("whole", "excess"), f"{where}.taxed")
    if taxed == "excess" and "threshold_monthly" not in data:
        raise ConfigError("taxed = 'excess' needs a threshold_monthly", where=f"{where}.taxed")
    values["excess_only"] = taxed == "excess"
    if "turnover" in data:
        values["turnover"] = _turnover(data["turnover"], f"{where}.turnover")
    invoice = _table_value(data.get("invoice", {}), f"{where}.invoice")
    values["invoice"] = tuple((key, _text(value, f"{where}.invoice.{key}")) for key, value in invoice.items())
    return TaxRule(**values)


def _tax_part(data: object, where: str) -> TaxPart:
    part = _table_value(data, where)
    _keys(part, {"name", "title", "rate"}, where)
    name = _text(part.get("name"), f"{where}.name")
    rate, rate_u = rate_units(part.get("rate"), where=f"{where}.rate", maximum=PERCENT_MAX)
    return TaxPart(name, _text(part.get("title", name.upper()), f"{where}.title"), rate, rate_u)


def _turnover(data: object, where: str) -> tuple[Turnover, ...]:
    if not isinstance(data, list):
        raise ConfigError("must be an array of {since = <date>, exceeds = true|false}", where=where)
    settings = []
    for i, item in enumerate(data):
        entry = _table_value(item, f"{where}[{i}]")
        _keys(entry, {"since", "exceeds"}, f"{where}[{i}]")
        settings.append(Turnover(_date(entry.get("since"), f"{where}[{i}].since"),
                                 _flag(entry.get("exceeds"), f"{where}[{i}].exceeds")))
    if [t.since for t in settings] != sorted({t.since for t in settings}):
        raise ConfigError("settings must be in date order, one per date", where=where)
    return tuple(settings)


def _round_off(data: dict, where: str, site: Site, rounding: str) -> RoundOff:
    _keys(data, {"head", "to", "rounding"}, where)
    to_minor = amount_minor(data.get("to", 1), site, where=f"{where}.to")
    if to_minor < 1:
        raise ConfigError("must be at least the minor unit", where=f"{where}.to")
    return RoundOff(_text(data.get("head", "round_off"), f"{where}.head"), to_minor,
                    _rounding(data, rounding, where), major(to_minor, site.minor_unit_exponent))


def _check_references(config: BillingConfig, where: str) -> None:
    """Every head a rule names exists and fits; no head is made twice."""
    heads = config.heads
    order = list(heads)
    for head in heads.values():
        for name in head.of:
            _known(name, heads, f"{head.where}.of", kinds=SERVICE_KINDS)
            if order.index(name) > order.index(head.name):
                raise ConfigError(f"head {name!r} must come before [heads.{head.name}] in the file: "
                                  "a percentage is taken of the heads above it", where=f"{head.where}.of")
    rule_heads = {r.head for r in config.interest}
    for rule in config.interest:
        if rule.head in heads:
            raise ConfigError(f"head {rule.head!r} is a charge head ([heads.{rule.head}])",
                              where=f"{rule.where}.head")
    made: dict[str, str] = {}
    outputs = [(p.name, t.where) for t in config.taxes for p in t.parts]
    if config.round_off is not None:
        outputs.append((config.round_off.head, f"{where}[round_off]"))
    for name, place in outputs:
        if name in heads or name in rule_heads or name in made:
            raise ConfigError(f"head {name!r} is already made elsewhere "
                              f"({made.get(name) or 'a charge head or an interest rule'})", where=place)
        made[name] = place
    for rule in config.interest:
        for name in rule.on_heads:
            _known(name, heads, f"{rule.where}.on")
    for tax in config.taxes:
        for name in tax.on_heads:
            if name not in heads and name not in rule_heads:
                raise _unknown(name, heads, f"{tax.where}.on")
        for name in tax.pass_through:
            _known(name, heads, f"{tax.where}.pass_through")
    _claimed_once(config, where)


def _claimed_once(config: BillingConfig, where: str) -> None:
    """A tariff or group feeds one head; a prepaid tariff feeds none."""
    seen: dict[str, str] = {}
    for head in config.heads.values():
        claims = [(f"tariff {t!r}", f"{head.where}.tariffs") for t in head.tariffs]
        claims += [(f"group {g!r}", f"{head.where}.groups") for g in head.groups]
        for tariff in set(head.tariffs) & config.prepaid_tariffs:
            raise ConfigError(f"tariff {tariff!r} is prepaid ([billing].prepaid_tariffs) and billed by this "
                              "head: a head is prepaid or postpaid, never both",
                              where=f"{head.where}.tariffs")
        for tariff in set(head.tariffs) & config.rated_only_tariffs:
            raise ConfigError(f"tariff {tariff!r} is left out of bills ([billing].rated_only_tariffs) and "
                              "billed by this head", where=f"{head.where}.tariffs")
        for claim, place in claims:
            if claim in seen:
                raise ConfigError(f"{claim} is already billed by {seen[claim]}", where=place)
            seen[claim] = head.where


def _known(name: str, heads: dict[str, Head], where: str, kinds: tuple[HeadKind, ...] = ()) -> None:
    if name not in heads:
        raise _unknown(name, heads, where)
    if kinds and heads[name].kind not in kinds:
        raise ConfigError(f"head {name!r} is {heads[name].kind.value}, not a service charge "
                          f"({', '.join(k.value for k in kinds)})", where=where)


def _unknown(name: str, heads: dict[str, Head], where: str) -> ConfigError:
    return ConfigError(f"unknown head {name!r}; heads: {', '.join(heads) or 'none'}", where=where)


def _applies(data: dict, where: str) -> Applies:
    occupancy = frozenset(_choice(value, Occupancy, f"{where}.occupancy")
                          for value in _names(data.get("occupancy", []), f"{where}.occupancy"))
    start = _date(data["from"], f"{where}.from") if "from" in data else None
    end = _date(data["until"], f"{where}.until") if "until" in data else None
    if start and end and end < start:
        raise ConfigError(f"until {end} is before from {start}", where=f"{where}.until")
    return Applies(frozenset(_names(data.get("tags", []), f"{where}.tags")), occupancy, start, end)


def amount_minor(value: object, site: Site, *, where: str) -> int:
    """A TOML amount in major units as minor units, exact at the minor unit."""
    number = decimal_value(value, where=where, maximum=AMOUNT_MAX)
    units = exact_units(number, site.minor_unit_exponent)
    if units is None:
        raise ConfigError(f"{number} has digits below the minor unit {site.minor_unit}", where=where)
    return units


def rate_units(value: object, *, where: str, maximum: Decimal = AMOUNT_MAX) -> tuple[Decimal, int]:
    """A non-negative rate or percentage, and it times 10^6."""
    number = decimal_value(value, where=where, maximum=maximum)
    units = exact_units(number, RATE_DECIMALS)
    if units is None:
        raise ConfigError(f"{number} has more than {RATE_DECIMALS} decimals", where=where)
    return number, units


def decimal_value(value: object, *, where: str, maximum: Decimal) -> Decimal:
    """A finite number 0..maximum (a TOML integer, float read as Decimal, or string)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ConfigError(f"must be a number, got {value!r}", where=where)
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except ArithmeticError:
        raise ConfigError(f"must be a number, got {value!r}", where=where) from None
    if not number.is_finite():
        raise ConfigError(f"must be a finite number, got {value!r}", where=where)
    if number < 0:
        raise ConfigError(f"must not be negative, got {number}", where=where)
    if number > maximum:
        raise ConfigError(f"must be at most {maximum}, got {number}", where=where)
    return number


def _keys(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {', '.join(sorted(known))}", where=where)


def _table(doc: dict, key: str, where: str) -> dict:
    return _table_value(doc.get(key, {}), f"{where}[{key}]")


def _table_value(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"must be a table, got {value!r}", where=where)
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"must be a non-empty string, got {value!r}", where=where)
    return value


def _names(value: object, where: str, *, required: bool = False) -> tuple[str, ...]:
    if value is None and not required:
        return ()
    if not isinstance(value, list) or (required and not value):
        raise ConfigError(f"must be {'a non-empty' if required else 'an'} array of strings, got {value!r}",
                          where=where)
    names = tuple(_text(v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(set(names)) != len(names):
        raise ConfigError(f"names a value twice: {list(names)}", where=where)
    return names


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}", where=where)
    return value


def _whole(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"must be a whole number {low}..{high}, got {value!r}", where=where)
    return value


def _date(value: object, where: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ConfigError(f"must be a date (2025-04-01), got {value!r}", where=where)


def _one_of(value: object, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ConfigError(f"must be one of {list(choices)}, got {value!r}", where=where)
    return str(value)


def _choice(value: object, enum: type[E], where: str) -> E:
    choices = [member.value for member in enum]
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"must be one of {choices}, got {value!r}", where=where)
    return enum(value)


def _rounding(data: dict, default: str, where: str) -> str:
    value = data.get("rounding", default)
    if value not in ROUNDING_RULES:
        raise ConfigError(f"must be one of {sorted(ROUNDING_RULES)}, got {value!r}",
                          where=f"{where}.rounding")
    return str(value)


def _title(name: str) -> str:
    """The title a head or rule shows when the file gives none: `sinking_fund` -> `Sinking fund`."""
    return name.replace("_", " ").capitalize()
