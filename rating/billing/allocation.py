"""Which dues a payment pays: a site's allocation rule over an account's open items.

A rule orders the open items (what is still owed per head, kind, bill and
due date) by criteria taken in turn:

- `due`: the oldest due date first (then the bill number, for a stable order);
- `kind`: principal before interest and late fees (`kinds = "principal_first"`)
  or interest first (`"interest_first"`, where a jurisdiction says so);
- `head`: the heads in the order the site lists them (`heads = ["late_fee",
  "maintenance", "water"]`); heads not listed come after, by name.

The default is `order = ["due", "kind", "head"]`, principal first: oldest bill
first, and in a bill the charges before its interest. A payment for a named
bill pays that bill's items first, then the rest by the rule.

Money to allocate comes from sources, used in turn: the account's credits in
its dues (a credit note or a negative rounding line, still open), then the
unallocated money of its payments (oldest receipt first), then the new
payment. A source tagged to a head pays only that head. What no item takes
stays with its source: the account's advance. `allocate` is the fast path;
`rating.payments.allocation_reference` is the plain reference it equals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rating.billing.documents import DuesItem, LineKind
from rating.errors import ConfigError

CRITERIA = ("due", "kind", "head")
KINDS = ("principal_first", "interest_first")
_INTEREST_KINDS = frozenset({LineKind.INTEREST, LineKind.LATE_FEE})


@dataclass(frozen=True)
class AllocationRule:
    order: tuple[str, ...] = CRITERIA
    kinds: str = "principal_first"
    heads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if sorted(self.order) != sorted(set(self.order)) or not set(self.order) <= set(CRITERIA):
            raise ConfigError(f"allocation order {list(self.order)}: each of {', '.join(CRITERIA)} "
                              "at most once", where="allocation.order")
        if self.kinds not in KINDS:
            raise ConfigError(f"allocation kinds {self.kinds!r}: one of {', '.join(KINDS)}",
                              where="allocation.kinds")

    def sort_key(self, bill: str = "") -> Callable[[DuesItem], tuple]:
        """item -> its place in the order; the named `bill`'s items first."""
        return _sort_key(self, bill)


@lru_cache(maxsize=256)
def _sort_key(rule: AllocationRule, bill: str) -> Callable[[DuesItem], tuple]:
    """The key function of a rule and a named bill, made once (a month's payments share a few)."""
    rank = {head: i for i, head in enumerate(rule.heads)}
    unlisted = len(rule.heads)
    interest_rank = 1 if rule.kinds == "principal_first" else 0
    parts: list[Callable[[DuesItem], object]] = []
    for criterion in rule.order:
        if criterion == "due":
            parts.append(lambda i: (i.due_date, i.bill_ref))
        elif criterion == "kind":
            parts.append(lambda i: interest_rank if i.kind in _INTEREST_KINDS else 1 - interest_rank)
        else:
            parts.append(lambda i: (rank.get(i.head, unlisted), i.head))

    def key(item: DuesItem) -> tuple:
        # the whole identity last: a total order, so the same items always sort alike (a kind is a str)
        return (bill == "" or item.bill_ref != bill, *[p(item) for p in parts],
                item.due_date, item.bill_ref, item.head, item.kind)
    return key


@dataclass(frozen=True)
class Source:
    """Money to allocate: a receipt's unallocated amount, or an open credit item
    (`item` set: a credit note or negative line, `amount_minor` its magnitude)."""

    ref: str  # the receipt number, or the credit item's bill
    amount_minor: int
    tag: str = ""  # a head: pays only that head
    item: DuesItem | None = None


@dataclass(frozen=True)
class Allocation:
    source: Source
    item: DuesItem
    amount_minor: int  # > 0: paid off the item


def allocate(items: Sequence[DuesItem], sources: Sequence[Source], rule: AllocationRule, *,
             bill: str = "") -> list[Allocation]:
    """What each source pays of each open item, in the rule's order; each source
    used to the end before the next. Items owing nothing or less are skipped."""
    owed = sorted((i for i in items if i.amount_minor > 0), key=rule.sort_key(bill))
    if not owed:
        return []
    left = [i.amount_minor for i in owed]
    allocations: list[Allocation] = []
    first = 0  # every item before it is paid off: untagged sources start here
    for source in sources:
        money = source.amount_minor
        k = first if not source.tag else 0
        while money > 0 and k < len(owed):
            item = owed[k]
            if left[k] and (not source.tag or item.head == source.tag):
                paid = min(money, left[k])
                left[k] -= paid
                money -= paid
                allocations.append(Allocation(source, item, paid))
            k += 1
        while first < len(owed) and not left[first]:
            first += 1
        if first == len(owed):
            break
    return allocations


def credit_sources(items: Sequence[DuesItem]) -> list[Source]:
    """The open credit items of an account (negative amounts) as sources, oldest first."""
    credits = sorted((i for i in items if i.amount_minor < 0), key=lambda i: (i.due_date, i.bill_ref, i.head))
    return [Source(i.bill_ref, -i.amount_minor, "", i) for i in credits]


def rule_from_mapping(data: object, *, where: str) -> AllocationRule:
    """The `[allocation]` table of payments.toml (absent: the default rule)."""
    if data is None:
        return AllocationRule()
    if not isinstance(data, dict):
        raise ConfigError("must be a table", where=where)
    unknown = sorted(set(data) - {"order", "kinds", "heads"})
    if unknown:
        raise ConfigError(f"unknown keys {unknown}; known: order, kinds, heads", where=where)
    order, heads = data.get("order", list(CRITERIA)), data.get("heads", [])
    for name, value in (("order", order), ("heads", heads)):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"give a list of names, got {value!r}", where=f"{where}.{name}")
    kinds = data.get("kinds", "principal_first")
    if not isinstance(kinds, str):
        raise ConfigError(f"one of {', '.join(KINDS)}, got {kinds!r}", where=f"{where}.kinds")
    try:
        return AllocationRule(tuple(order), kinds, tuple(heads))
    except ConfigError as exc:
        raise ConfigError(exc.message, where=f"{where}.{(exc.where or '').split('.')[-1]}") from None
