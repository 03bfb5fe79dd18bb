"""A site's payment settings: `payments.toml` beside its site file (optional).

    [allocation]                  # rating.billing.allocation
    order = ["due", "kind", "head"]
    kinds = "principal_first"     # or "interest_first"
    heads = ["late_fee", "maintenance", "water", "electricity"]

    [cheque]
    bounce_charge = "500.00"      # billed by a debit note on the next bill; "0" for none
    bounce_head = "bounce_charge"

    [refunds]
    deadline_days = 90            # after the payment (an advance) or the deposit's end
    approvers = ["treasurer", "secretary"]
    deposits = ["security_deposit"]   # heads whose paid amount is refundable once the term ends

    [bank.csv]                    # the bank's CSV export (rating.payments.CsvLayout)
    account = "IN55HDFC0000123"
    ...

Every key is checked; an error names the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rating.billing.allocation import AllocationRule, rule_from_mapping
from rating.billing.config import amount_minor
from rating.errors import ConfigError
from rating.inputs.textfile import load_toml
from rating.model.site import Site
from rating.payments.csv_statement import CsvLayout

PAYMENTS_FILE = "payments.toml"
_TOP = {"allocation", "cheque", "refunds", "bank"}


@dataclass(frozen=True)
class PaymentSettings:
    allocation: AllocationRule = field(default_factory=AllocationRule)
    bounce_charge_minor: int = 0
    bounce_head: str = "bounce_charge"
    refund_deadline_days: int = 90
    approvers: frozenset[str] = frozenset()
    deposit_heads: frozenset[str] = frozenset()
    bank_csv: CsvLayout | None = None


def payments_path(site_file: str | Path) -> Path:
    return Path(site_file).parent / PAYMENTS_FILE


def load_payment_settings(site_file: str | Path, site: Site) -> PaymentSettings:
    """The settings beside `site_file`; the defaults when there is no payments.toml."""
    path = payments_path(site_file)
    if not path.exists():
        return PaymentSettings()
    return settings_from_mapping(load_toml(path, error=ConfigError, what="payments file"), where=str(path),
                                 site=site)


def settings_from_mapping(doc: dict, *, where: str, site: Site) -> PaymentSettings:
    _keys(doc, _TOP, where)
    cheque = _table(doc, "cheque", where)
    _keys(cheque, {"bounce_charge", "bounce_head"}, f"{where}[cheque]")
    refunds = _table(doc, "refunds", where)
    _keys(refunds, {"deadline_days", "approvers", "deposits"}, f"{where}[refunds]")
    deadline = refunds.get("deadline_days", 90)
    if type(deadline) is not int or not 0 <= deadline <= 3660:
        raise ConfigError(f"a whole number of days 0..3660, got {deadline!r}",
                          where=f"{where}[refunds].deadline_days")
    bank = _table(doc, "bank", where)
    _keys(bank, {"csv"}, f"{where}[bank]")
    layout = CsvLayout.from_mapping(bank["csv"], where=f"{where}[bank.csv]") if "csv" in bank else None
    charge = cheque.get("bounce_charge", "0")
    return PaymentSettings(
        allocation=rule_from_mapping(doc.get("allocation"), where=f"{where}[allocation]"),
        bounce_charge_minor=amount_minor(charge, site, where=f"{where}[cheque].bounce_charge"),
        bounce_head=_name(cheque.get("bounce_head", "bounce_charge"), f"{where}[cheque].bounce_head"),
        refund_deadline_days=deadline,
        approvers=_names(refunds.get("approvers", []), f"{where}[refunds].approvers"),
        deposit_heads=_names(refunds.get("deposits", []), f"{where}[refunds].deposits"),
        bank_csv=layout)


def _keys(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; known: {', '.join(sorted(known))}", where=where)


def _table(doc: dict, key: str, where: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError("must be a table", where=f"{where}[{key}]")
    return value


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"give a name, got {value!r}", where=where)
    return value


def _names(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list):
        raise ConfigError(f"give a list of names, got {value!r}", where=where)
    return frozenset(_name(v, where) for v in value)
