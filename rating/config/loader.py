"""A site's whole configuration, from one site file.

```toml
[site]
name = "Green Meadows Co-operative Housing Society"
currency = "INR"
time_zone = "Asia/Kolkata"

[files]                      # paths are relative to this file
tariffs = ["tariffs.toml"]   # one file or several; tariff ids must be unique
meters = "meters.csv"        # CSV, Parquet or Arrow IPC
accounts = "accounts.csv"
groups = "groups.csv"        # optional: shared-area apportionment groups
```

`load_config` reads everything, then checks that every tariff a meter or an
account names exists; the error names the meter or account, its row and file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rating.config.tariff_file import load_tariffs
from rating.errors import ConfigError, TariffError
from rating.inputs import cells
from rating.model.groups import Groups, load_groups
from rating.model.registry import Registry, load_registry
from rating.model.site import Site, load_site_file
from rating.model.tariff import Tariff

_FILE_KEYS = {"tariffs", "meters", "accounts", "groups"}
_REQUIRED_FILE_KEYS = ("tariffs", "meters", "accounts")


@dataclass(frozen=True)
class Config:
    """Everything rating needs besides the readings."""

    site: Site
    registry: Registry
    tariffs: dict[str, Tariff]
    groups: Groups | None = None  # shared-area groups: rate() splits them over whole periods


def load_config(site_file: str | Path) -> Config:
    """Read a site file and the tariff and registry files it names."""
    site_file = Path(site_file)
    site, doc = load_site_file(site_file)
    files = files_table(doc, site_file)
    folder = site_file.parent
    tariff_paths = [folder / name for name in files["tariffs"]]
    tariffs = _load_all_tariffs(tariff_paths)
    meters_path, accounts_path = folder / files["meters"], folder / files["accounts"]
    registry = load_registry(meters_path, accounts_path, site, priced_by_area=priced_by_area(tariffs))
    check_tariff_ids(registry, tariffs, meters_path=meters_path, accounts_path=accounts_path,
                     tariff_paths=tariff_paths)
    groups_path = groups_file(files, site_file)
    groups = None if groups_path is None else load_groups(groups_path)
    return Config(site=site, registry=registry, tariffs=tariffs, groups=groups)


def groups_file(files: dict, site_file: Path) -> Path | None:
    """The groups file a site's `[files]` table names (None: it names none); it must exist."""
    if "groups" not in files:
        return None
    path = site_file.parent / files["groups"]
    if not path.is_file():
        raise ConfigError(f"groups file not found: {path}", where=f"{site_file}[files].groups")
    return path


def files_table(doc: dict, site_file: Path) -> dict:
    """The site file's validated [files] table; `tariffs` always a list."""
    where = f"{site_file}[files]"
    files = doc.get("files")
    if files is None:
        raise ConfigError(
            "missing [files] table (tariffs, meters and accounts paths)", where=str(site_file)
        )
    if not isinstance(files, dict):
        raise ConfigError("must be a table", where=where)
    unknown = sorted(set(files) - _FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown}; known: {', '.join(sorted(_FILE_KEYS))}", where=where
        )
    for key in _REQUIRED_FILE_KEYS:
        if key not in files:
            raise ConfigError(f"missing {key!r}", where=where)
    tariffs = files["tariffs"]
    if isinstance(tariffs, str):
        tariffs = [tariffs]
    if not isinstance(tariffs, list) or not tariffs or not all(
        isinstance(t, str) and t for t in tariffs
    ):
        raise ConfigError("must be a file name or a non-empty list of file names",
                          where=f"{where}.tariffs")
    for key in ("meters", "accounts", "groups"):
        if key in files and not (isinstance(files[key], str) and files[key]):
            raise ConfigError("must be a file name", where=f"{where}.{key}")
    return {**files, "tariffs": tariffs}


def _load_all_tariffs(paths: list[Path]) -> dict[str, Tariff]:
    tariffs: dict[str, Tariff] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        for tariff_id, tariff in load_tariffs(path).items():
            if tariff_id in tariffs:
                raise TariffError(
                    f"tariff {tariff_id!r} is also defined in {origin[tariff_id]}; "
                    "a tariff's versions belong in one file",
                    where=str(path),
                )
            tariffs[tariff_id] = tariff
            origin[tariff_id] = path
    return tariffs


def priced_by_area(tariffs: dict[str, Tariff]) -> set[str]:
    """The tariffs with an area charge: their accounts need an area."""
    return {tariff_id for tariff_id, tariff in tariffs.items() if tariff.charges_per_area}


def check_tariff_ids(
    registry: Registry,
    tariffs: dict[str, Tariff],
    *,
    meters_path: str | Path = "meters",
    accounts_path: str | Path = "accounts",
    tariff_paths: list[Path] | None = None,
) -> None:
    """Every tariff a meter or an account names must exist."""
    defined = ", ".join(sorted(tariffs)) or "none"
    source = " in " + ", ".join(str(p) for p in tariff_paths) if tariff_paths else ""
    known = pa.array(sorted(tariffs), pa.string())
    for what, ids, used, path in (("meter", registry.meter_ids, registry.meter_tariffs, meters_path),
                                  ("account", registry.account_ids, registry.account_tariffs, accounts_path)):
        row = cells.first_true(pc.and_(used.is_valid(), pc.invert(pc.is_in(used, value_set=known))))
        if row is not None:
            raise TariffError(
                f"{what} {ids[row].as_py()!r} uses unknown tariff {used[row].as_py()!r} "
                f"(tariffs defined{source}: {defined})",
                where=f"{path} row {row + 1}",
            )
