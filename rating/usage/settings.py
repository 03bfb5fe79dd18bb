"""The usage file (TOML): the site's money rules (`[site]`, as in the site
file), parking (`[parking]`: plates, tariffs, passes) and facilities
(`[facilities.<name>]`). Every error names the file and the key."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from rating.config.tariff_file import _check_keys, _choice, _fail, _number
from rating.errors import TariffError
from rating.inputs.textfile import load_toml, parse_toml
from rating.model.site import Site, site_from_mapping
from rating.usage.parking_tariff import STEP_PRICE_LIMIT, ParkingTariff, _whole, parking_tariff
from rating.usage.plates import Plates, load_plates

FACILITY_UNITS = ("use", "kwh", "minute")  # what a facility's price is per
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_PARKING_KEYS = {"plates", "subscriptions", "wallet", "visitor_account", "tariffs", "passes"}
USAGE_FILE = "usage.toml"  # beside a served site file (rating serve)
_PASS_KEYS = {"price", "days", "renew_days_before", "warn_days_before", "wallet"}
_FACILITY_KEYS = {"price", "per", "wallet", "title"}


@dataclass(frozen=True)
class PassProduct:
    """A parking pass bought from a wallet for `days` days, renewed
    `renew_days_before` its end; warned `warn_days_before` when the wallet cannot pay it."""

    name: str
    price: Decimal
    days: int
    renew_days_before: int
    warn_days_before: int
    wallet: str


@dataclass(frozen=True)
class Facility:
    name: str
    price: Decimal  # per FACILITY_UNITS
    per: str
    wallet: str
    title: str


@dataclass(frozen=True)
class UsageSettings:
    site: Site
    path: str
    tariffs: dict[str, ParkingTariff] = field(default_factory=dict)
    plates: Plates | None = None
    wallet: str = "parking"
    visitor_account: str | None = None  # whose wallet keeps what visitors pay at exit
    passes: dict[str, PassProduct] = field(default_factory=dict)
    facilities: dict[str, Facility] = field(default_factory=dict)
    subscriptions_path: Path | None = None  # account_id, pass, start (rating.usage.passes)

    def need_plates(self) -> Plates:
        if self.plates is None:
            raise TariffError("no plates: name a plates file in [parking].plates",
                              where=f"{self.path} parking")
        return self.plates


def load_usage_file(path: str | Path, *, site: Site | None = None) -> UsageSettings:
    """`site`: the served site's rules, which then replace the file's [site] table."""
    path = Path(path)
    return usage_from_document(load_toml(path, error=TariffError, what="usage file"), where=str(path),
                               folder=path.parent, site=site)


def usage_from_toml(text: str, *, where: str, folder: Path | None = None) -> UsageSettings:
    return usage_from_document(parse_toml(text, where=where, error=TariffError), where=where, folder=folder)


def usage_from_document(doc: dict, *, where: str, folder: Path | None, site: Site | None = None
                        ) -> UsageSettings:
    _check_keys(doc, {"site", "parking", "facilities"}, (), where, "")
    if site is None:
        site = site_from_mapping(doc.get("site", {}), where=f"{where}[site]")
    facilities = {name: _facility(name, raw, where) for name, raw in _named(doc, "facilities", where)}
    parking = _check_keys(doc.get("parking", {}), _PARKING_KEYS, (), where, "parking")
    tariffs = {tid: parking_tariff(tid, raw, where)
               for tid, raw in _named(parking, "tariffs", where, "parking.")}
    plates_path = _beside(parking, "plates", where, folder)
    plates = None if plates_path is None else load_plates(plates_path, tuple(tariffs))
    wallet = _wallet(parking.get("wallet", "parking"), where, "parking.wallet")
    visitor = parking.get("visitor_account")
    if visitor is not None and (not isinstance(visitor, str) or not visitor.strip()):
        _fail(where, "parking.visitor_account", f"must be an account id, got {visitor!r}")
    passes = {name: _pass(name, raw, where, wallet)
              for name, raw in _named(parking, "passes", where, "parking.")}
    return UsageSettings(site, where, tariffs, plates, wallet, visitor, passes, facilities,
                         _beside(parking, "subscriptions", where, folder))


def _beside(table: dict, key: str, where: str, folder: Path | None) -> Path | None:
    """A file named by `key`, in the usage file's folder."""
    if key not in table:
        return None
    if not isinstance(table[key], str) or not table[key] or folder is None:
        _fail(where, f"parking.{key}", "must be a file name (beside the usage file)")
    return folder / table[key]


def _named(doc: dict, key: str, where: str, prefix: str = "") -> list[tuple[str, Any]]:
    tables = doc.get(key, {})
    if not isinstance(tables, dict):
        _fail(where, prefix + key, "must be a table of named tables")
    for name in tables:
        if not _NAME.match(name):
            _fail(where, f"{prefix}{key}.{name}", "a name is 1 to 64 of a-z, 0-9 and _")
    return list(tables.items())


def _wallet(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        _fail(where, path, f"must be a wallet name (a-z, 0-9, _), got {value!r}")
    return value


def _pass(name: str, raw: Any, where: str, wallet: str) -> PassProduct:
    path = f"parking.passes.{name}"
    table = _check_keys(raw, _PASS_KEYS, ("price", "days"), where, path)
    days = _whole(table["days"], where, f"{path}.days", 1, 366)
    renew = _whole(table.get("renew_days_before", 1), where, f"{path}.renew_days_before", 0, days - 1)
    warn = _whole(table.get("warn_days_before", renew), where, f"{path}.warn_days_before", renew, days - 1)
    return PassProduct(name, _money(table["price"], where, f"{path}.price"), days, renew, warn,
                       _wallet(table.get("wallet", wallet), where, f"{path}.wallet"))


def _facility(name: str, raw: Any, where: str) -> Facility:
    path = f"facilities.{name}"
    table = _check_keys(raw, _FACILITY_KEYS, ("price", "wallet"), where, path)
    per = _choice(table.get("per", "use"), FACILITY_UNITS, where, f"{path}.per")
    title = table.get("title", name)
    if not isinstance(title, str):
        _fail(where, f"{path}.title", f"must be a string, got {title!r}")
    return Facility(name, _money(table["price"], where, f"{path}.price"), per,
                    _wallet(table["wallet"], where, f"{path}.wallet"), title)


def _money(value: Any, where: str, path: str) -> Decimal:
    number = _number(value, where, path, sign="positive")
    if number >= STEP_PRICE_LIMIT:
        _fail(where, path, f"must be below {STEP_PRICE_LIMIT:,}, got {value}")
    return number
