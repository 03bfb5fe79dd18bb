"""What a bill run reads from a site's files: the units (from the accounts
and meters registry; an account's `active_from` / `active_until` are the
days its unit is billed), the billing rules (`billing.toml` beside the site
file) and how its documents are numbered (that file's `[numbering]` table,
rating.billing.numbering). The run's cycle is a calendar month of the site.
Loading checks that no head is both prepaid and postpaid (rating.billing.claims).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from rating.billing.claims import check_claims
from rating.billing.config import billing_from_mapping, billing_path
from rating.billing.cycles import run_months
from rating.billing.documents import BillTo, Cycle, Occupancy, Unit
from rating.billing.numbering import Numbering, numbering_from_mapping
from rating.billing.render_settings import DocumentSettings, document_settings
from rating.billing.rules import BillingConfig
from rating.config.loader import Config, load_config
from rating.errors import ConfigError, InputError
from rating.inputs.textfile import parse_toml, read_text
from rating.model.site import load_site_file
from rating.prepaid.wallets import policy_from_mapping


@dataclass(frozen=True)
class SiteBilling:
    config: Config
    billing: BillingConfig
    numbering: Numbering
    rules_text: str  # billing.toml as read: the ledger audits each new version
    document: DocumentSettings  # its [document] table: what rendered bills say of the site
    templates: Path  # the site's own templates folder (rating.billing.render.templates)

    @property
    def site_id(self) -> str:
        return self.config.site.name

    def run_months(self, run: Cycle) -> list[dt.date]:
        """The months to rate for a run: a quarterly account's bill covers three."""
        return run_months(run, self.units(), self.billing.site.default_cycle)

    def units(self) -> list[Unit]:
        """Every account of the registry as a unit, with its meters; the bill
        is addressed to the owner (`name`) or the tenant as `bill_to` says."""
        return list(self._units)

    @functools.cached_property
    def _units(self) -> tuple[Unit, ...]:
        # built once per loaded site: a run asks for its months and then its units
        registry = self.config.registry
        meters: dict[str, list[tuple[str | int, str]]] = {}
        columns = (registry.meter_accounts, registry.meter_ids, registry.meter_tariffs)
        for account_id, meter_id, tariff_id in zip(*(c.to_pylist() for c in columns), strict=True):
            meters.setdefault(account_id, []).append((meter_id, tariff_id))
        return tuple(Unit(a.account_id, owner=a.name, area=a.area, occupancy=Occupancy(a.occupancy),
                          tags=a.tags, billing_cycle=a.cycle, billed_from=a.active_from,
                          billed_until=a.active_until, tenant=a.tenant, bill_to=BillTo(a.bill_to),
                          address=a.address, meters=tuple(meters.get(a.account_id, ())))
                     for a in registry.accounts.values())


def load_site_billing(site_file: str | Path) -> SiteBilling:
    """The site, its registry, its billing rules and its numbering; every
    error names the file and key."""
    config = load_config(site_file)
    _, site_doc = load_site_file(site_file)
    policy = policy_from_mapping(site_doc.get("prepaid"), config.site, where=f"{site_file}[prepaid]")
    path = billing_path(site_file)
    text = read_text(path, error=ConfigError, what="billing file")
    society = site_billing(config, text, where=str(path), templates=Path(site_file).parent / "templates")
    check_claims(config, society.billing, policy, site_where=str(site_file))
    return society


def site_billing(config: Config, text: str, *, where: str, templates: Path) -> SiteBilling:
    """A loaded site's billing from its billing file's text (`where` names the
    file; `templates` is the folder of the site's own bill templates): what a
    server builds again when its site configuration changes."""
    doc = parse_toml(text, where=where, error=ConfigError)
    numbering = numbering_from_mapping(doc.pop("numbering", None), where=f"{where}[numbering]")
    site = config.site
    document = document_settings(doc.pop("document", None), site_name=site.name, currency=site.currency,
                                 exponent=site.minor_unit_exponent, where=f"{where}[document]")
    billing = billing_from_mapping(doc, where=where, site=site)
    return SiteBilling(config, billing, numbering, text, document, templates)


def run_cycle(site_id: str, month: str, billing: BillingConfig, *, bill_date: dt.date | None = None
              ) -> Cycle:
    """The run of a calendar month (`2025-05`): billed the day after it ends
    (or on `bill_date`), due `[billing].due_days` later."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", month)
    if match is None or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"a cycle is a month such as 2025-05, got {month!r}", where="--cycle")
    year, number = int(match.group(1)), int(match.group(2))
    first = dt.date(year, number, 1)
    last = dt.date(year, number, calendar.monthrange(year, number)[1])
    billed = bill_date or last + dt.timedelta(days=1)
    if billed < last:
        raise InputError(f"the bill date {billed} is before the cycle ends ({last})", where="--bill-date")
    return Cycle(site_id, first, last, billed, billed + dt.timedelta(days=billing.due_days))
