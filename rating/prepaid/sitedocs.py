"""A site's configuration as documents: what LoadConfig receives and the ledger keeps.

The server must rate with the same tariffs and registry after a restart, so
the configuration it runs with is stored in the ledger as documents: the
site file's text (`[site]` and `[prepaid]` tables), the tariff files' texts
and the meter, account and shared-area group tables (Arrow IPC). `build`
turns them into a `rating.config.loader.Config` and a `PrepaidPolicy` with
the same checks as `rating.config.loader.load_config`.

Shared-area groups (`[files].groups`) are split where whole periods are
rated, never by a prepaid debit, which is made as readings arrive. A served
site may have them only when its bill splits them: `build` is told which
groups a postpaid head bills (the server reads them from billing.toml's
share heads) and refuses any other.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from rating.config.loader import Config, check_tariff_ids, files_table, groups_file, priced_by_area
from rating.config.tariff_file import tariffs_from_toml
from rating.errors import ConfigError, InputError, TariffError
from rating.inputs.tables import read_csv_text, read_table
from rating.inputs.textfile import parse_toml, read_text
from rating.model.groups import Groups, groups_from_table
from rating.model.registry import registry_from_tables
from rating.model.site import load_site_file, site_from_mapping
from rating.prepaid.records import pack_parts, read_table_bytes, table_bytes, unpack_parts
from rating.prepaid.wallets import PrepaidPolicy, policy_from_mapping, with_account_overrides

_EMPTY_METERS = pa.table({"meter_id": pa.array([], pa.string()), "account_id": pa.array([], pa.string()),
                          "tariff_id": pa.array([], pa.string())})
_UNSPLIT = ("shared-area groups are split when whole periods are rated (rating rate, bills), never by "
            "prepaid debits; bill it by a share head of billing.toml (kind = \"share\", groups = [...]) "
            "or leave [files].groups out of the prepaid site")
_EMPTY_ACCOUNTS = pa.table({"account_id": pa.array([], pa.string())})


@dataclass(frozen=True)
class SiteDocs:
    site_toml: str = ""
    tariffs_toml: tuple[str, ...] = ()
    meters: pa.Table = field(default_factory=lambda: _EMPTY_METERS)
    accounts: pa.Table = field(default_factory=lambda: _EMPTY_ACCOUNTS)
    groups: pa.Table | None = None  # used when the site file names [files].groups

    @classmethod
    def from_site_file(cls, path: str | Path) -> SiteDocs:
        """Read a site file and the files it names (see rating.config.loader)."""
        path = Path(path)
        _, doc = load_site_file(path)  # the site file's own errors first, naming it
        files = files_table(doc, path)
        texts = tuple(read_text(path.parent / name, error=TariffError, what="tariff file")
                      for name in files["tariffs"])
        groups_path = groups_file(files, path)
        groups = None if groups_path is None else read_table(groups_path, strings=True)
        return cls(read_text(path, error=ConfigError, what="site file"), texts,
                   read_table(path.parent / files["meters"], strings=True),
                   read_table(path.parent / files["accounts"], strings=True), groups)

    def merged(self, *, site_toml: str = "", tariffs_toml: tuple[str, ...] = (),
               meters: bytes = b"", accounts: bytes = b"", groups: bytes = b"") -> SiteDocs:
        """These documents with the parts given replaced (LoadConfig)."""
        docs = self
        if site_toml:
            docs = replace(docs, site_toml=site_toml)
        if tariffs_toml:
            docs = replace(docs, tariffs_toml=tuple(tariffs_toml))
        if meters:
            docs = replace(docs, meters=table_from_bytes(meters, where="meters"))
        if accounts:
            docs = replace(docs, accounts=table_from_bytes(accounts, where="accounts"))
        if groups:
            docs = replace(docs, groups=table_from_bytes(groups, where="groups"))
        return docs

    def build(self, *, postpaid_groups: Collection[str] = ()) -> tuple[Config, PrepaidPolicy]:
        """Validate everything; errors name the document, row and field. The
        site's groups must each be in `postpaid_groups` (billed by a share head)."""
        doc = parse_toml(self.site_toml, where="site", error=ConfigError)
        groups = self._groups(doc.get("files"), postpaid_groups)
        site = site_from_mapping(doc.get("site", {}), where="site[site]")
        policy = policy_from_mapping(doc.get("prepaid"), site, where="site[prepaid]")
        tariffs: dict = {}
        for i, text in enumerate(self.tariffs_toml):
            for tariff_id, tariff in tariffs_from_toml(text, where=f"tariffs[{i}]").items():
                if tariff_id in tariffs:
                    raise TariffError(f"tariff {tariff_id!r} is defined twice", where=f"tariffs[{i}]")
                tariffs[tariff_id] = tariff
        registry = registry_from_tables(self.meters, self.accounts, site=site, meters_where="meters",
                                        accounts_where="accounts", priced_by_area=priced_by_area(tariffs))
        policy = with_account_overrides(policy, self.accounts, site, where="accounts")
        check_tariff_ids(registry, tariffs, meters_path="meters", accounts_path="accounts")
        return Config(site=site, registry=registry, tariffs=tariffs, groups=groups), policy

    def _groups(self, files: object, postpaid_groups: Collection[str]) -> Groups | None:
        """The site's groups, each split by the bill; None when the site names none."""
        if not (isinstance(files, dict) and "groups" in files):
            return None
        if self.groups is None:
            raise ConfigError("names a groups file, but no groups table came with the site (LoadConfig: "
                              "send it as groups)", where="site[files].groups")
        groups = groups_from_table(self.groups, where="groups")
        for group in groups:
            if group.group_id not in postpaid_groups:
                # A split needs the whole period's common cost; a deduction debits as
                # readings arrive, before the period ends: only the bill can split.
                raise ConfigError(f"shared-area group {group.group_id!r} has no postpaid head: {_UNSPLIT}",
                                  where="site[files].groups")
        return groups

    def to_bytes(self) -> bytes:
        head = json.dumps({"site_toml": self.site_toml, "tariffs_toml": list(self.tariffs_toml)}).encode()
        parts = [head, table_bytes(self.meters), table_bytes(self.accounts)]
        if self.groups is not None:  # a site without groups keeps the bytes it always had
            parts.append(table_bytes(self.groups))
        return pack_parts(*parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> SiteDocs:
        head, meters, accounts, *groups = unpack_parts(data)
        meta = json.loads(head)
        return cls(meta["site_toml"], tuple(meta["tariffs_toml"]), read_table_bytes(meters),
                   read_table_bytes(accounts), read_table_bytes(groups[0]) if groups else None)


def table_from_bytes(data: bytes, *, where: str) -> pa.Table:
    """Arrow IPC (stream or file) or CSV with a header row (read as text)."""
    try:
        if data[:6] == b"ARROW1":
            return ipc.open_file(pa.py_buffer(data)).read_all()
        if data[:4] == b"\xff\xff\xff\xff":
            return ipc.open_stream(pa.py_buffer(data)).read_all()
        return read_csv_text(data, where=where)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"neither Arrow IPC nor CSV: {exc}", where=where) from None
