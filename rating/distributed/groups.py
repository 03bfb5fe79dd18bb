"""Shared-area groups across buckets: which accounts a group's split needs, and
which groups must be split together.

A group's split reads the consumption of its source meters, of the members'
own meters (or its sub-meters), and changes what its members and the source
meters' accounts are charged. Those accounts sit in any bucket. Groups that
share an account (a member of two groups, one account owning two groups'
common meters) move quantities onto the same lines, so they are split
together: one task per connected set of groups, over the period totals of
its accounts gathered from every bucket (rating.distributed.tasks).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rating.config.loader import Config
from rating.model.groups import Group, Groups


@dataclass(frozen=True)
class GroupSet:
    """Groups split together, in the groups file's order, and every account they touch."""

    groups: tuple[Group, ...]
    accounts: frozenset[str]

    def config(self, config: Config) -> Config:
        """`config` with only these groups."""
        where = config.groups.where if config.groups is not None else "groups"
        return replace(config, groups=Groups(self.groups, where=where))


def group_sets(config: Config) -> list[GroupSet]:
    """The connected sets of the site's groups, ordered by their first group."""
    if config.groups is None:
        return []
    groups = list(config.groups)
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    account_of = {str(m.meter_id): m.account_id for m in config.registry.meters}
    touched = [_accounts_of(group, account_of) for group in groups]
    for i, accounts in enumerate(touched):
        for account in accounts:
            j = owner.setdefault(account, i)
            parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(len(groups)):
        members.setdefault(root(i), []).append(i)
    sets = sorted(members.values())
    return [GroupSet(tuple(groups[i] for i in s), frozenset().union(*(touched[i] for i in s)))
            for s in sets]


def _accounts_of(group: Group, account_of: dict[str, str]) -> set[str]:
    """The members, and the accounts of the meters the group reads."""
    meters = list(group.source_meters) + list(group.sub_meters or ())
    # a meter the registry lacks is an error of the split itself (rating.apportion.views)
    read = {account_of[str(m)] for m in meters if str(m) in account_of}
    return {m.account_id for m in group.members} | read
