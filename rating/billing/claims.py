"""Prepaid or postpaid, per head: a charge is debited from a wallet or billed, never both.

The prepaid service (rating.prepaid) debits every line of a prepaid tariff
(`[billing].prepaid_tariffs`): a meter's lines from the meter's `wallet`, an
account's own tariff lines (area charges, fees) from the site file's
`[prepaid].account_lines_wallet`. Its heads are therefore those wallets and
the prepaid tariffs' fee names; a bill's heads are billing.toml's
`[heads.<name>]`. A name on both sides is one charge collected twice, and
loading the site's billing refuses it, naming both files and keys. The bill
run loads both files, so the check is made there (`check_claims`). The same
holds for a shared-area group that a share head splits on the bills: its
source meters must not be on a prepaid tariff, or their cost would be debited
from a wallet and then billed to the members again.
"""

from __future__ import annotations

import pyarrow as pa

from rating.billing.rules import BillingConfig
from rating.config.loader import Config
from rating.errors import ConfigError
from rating.prepaid.wallets import PrepaidPolicy


def prepaid_heads(config: Config, billing: BillingConfig, policy: PrepaidPolicy,
                  site_where: str) -> dict[str, str]:
    """Each head the prepaid service debits, with where it is configured."""
    prepaid = billing.prepaid_tariffs
    heads: dict[str, str] = {}
    registry = config.registry
    for index, meter in enumerate(registry.meters):
        if meter.tariff_id in prepaid:
            heads.setdefault(meter.wallet, f"{registry.meter_place(index)} column wallet "
                                           f"(tariff {meter.tariff_id!r})")
    for account in registry.accounts.values():
        if account.tariff_id in prepaid:
            heads.setdefault(policy.account_lines_wallet,
                             f"{site_where}[prepaid].account_lines_wallet (tariff {account.tariff_id!r} "
                             f"of {registry.account_place(account.account_id)})")
    for tariff_id in sorted(prepaid):
        tariff = config.tariffs[tariff_id]
        for version in tariff.versions:
            for name, _ in version.fees:
                heads.setdefault(name, f"{tariff.source or 'tariffs'}: tariff {tariff_id} "
                                       f"({version.effective_from.isoformat()}) fees")
    return heads


def check_claims(config: Config, billing: BillingConfig, policy: PrepaidPolicy, *, site_where: str) -> None:
    """Refuse a prepaid tariff the site does not define, and a head both sides charge."""
    for tariff_id in sorted(billing.prepaid_tariffs | billing.rated_only_tariffs):
        if tariff_id not in config.tariffs:
            key = "prepaid_tariffs" if tariff_id in billing.prepaid_tariffs else "rated_only_tariffs"
            raise ConfigError(f"unknown tariff {tariff_id!r}; the site's tariffs: "
                              f"{', '.join(sorted(config.tariffs)) or 'none'}",
                              where=f"{billing.path}[billing].{key}")
    debited = prepaid_heads(config, billing, policy, site_where)
    for name, head in billing.heads.items():
        if name in debited:
            raise ConfigError(f"head {name!r} is billed postpaid here and debited from a prepaid wallet by "
                              f"{debited[name]} ([billing].prepaid_tariffs): a head is prepaid or postpaid, "
                              "never both; rename one, or drop the tariff from prepaid_tariffs "
                              "(rated_only_tariffs leaves its lines out of bills)", where=head.where)
    _check_group_sources(config, billing)


def _check_group_sources(config: Config, billing: BillingConfig) -> None:
    """Refuse a group billed by a share head whose source meter is debited prepaid."""
    if config.groups is None or not billing.prepaid_tariffs:
        return
    registry = config.registry
    for group in config.groups.groups:
        head = billing.head_of_group.get(group.group_id)
        if head is None:
            continue
        for meter_id in group.source_meters:
            found = registry.index_of(pa.array([meter_id]))[0]
            tariff_id = registry.meter_tariffs[int(found)].as_py() if found >= 0 else None
            if tariff_id in billing.prepaid_tariffs:
                raise ConfigError(f"meter {meter_id!r} is the source of group {group.group_id!r}, which "
                                  f"{head.where} splits on the bills, but its tariff {tariff_id!r} is in "
                                  "[billing].prepaid_tariffs: its cost would be debited from a wallet and "
                                  "billed to the members again", where=head.where)
