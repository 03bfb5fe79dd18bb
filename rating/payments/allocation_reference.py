"""A slow, plain reference of allocation (rating.billing.allocation): the rule
written out as a comparison of two items, money counted in Decimal, one item
at a time. Property tests hold `allocate` equal to it."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cmp_to_key

from rating.billing.allocation import AllocationRule, Source
from rating.billing.documents import DuesItem, LineKind

Paid = tuple[str, DuesItem, int]  # (source ref, item, amount)


def _compare(a: DuesItem, b: DuesItem, rule: AllocationRule, bill: str) -> int:
    """< 0 when `a` is paid before `b`."""
    def cmp(x: object, y: object) -> int:
        return (x > y) - (x < y)  # type: ignore[operator]

    if bill and (a.bill_ref == bill) != (b.bill_ref == bill):
        return -1 if a.bill_ref == bill else 1
    for criterion in rule.order:
        if criterion == "due":
            found = cmp(a.due_date, b.due_date) or cmp(a.bill_ref, b.bill_ref)
        elif criterion == "kind":
            interest = (LineKind.INTEREST, LineKind.LATE_FEE)
            a_first = (a.kind in interest) == (rule.kinds == "interest_first")
            b_first = (b.kind in interest) == (rule.kinds == "interest_first")
            found = 0 if a_first == b_first else -1 if a_first else 1
        else:
            place = {head: i for i, head in enumerate(rule.heads)}
            found = cmp(place.get(a.head, len(rule.heads)), place.get(b.head, len(rule.heads))) \
                or cmp(a.head, b.head)
        if found:
            return found
    return cmp((a.due_date, a.bill_ref, a.head, a.kind.value), (b.due_date, b.bill_ref, b.head, b.kind.value))


def reference_allocation(items: Sequence[DuesItem], sources: Sequence[Source], rule: AllocationRule, *,
                         bill: str = "") -> list[Paid]:
    """Each source in turn pays the items it may pay, in the rule's order, as much as each still owes."""
    owing = [item for item in items if item.amount_minor > 0]
    owing.sort(key=cmp_to_key(lambda a, b: _compare(a, b, rule, bill)))
    owed = {id(item): Decimal(item.amount_minor) for item in owing}
    paid: list[Paid] = []
    for source in sources:
        money = Decimal(source.amount_minor)
        for item in owing:
            if money == 0:
                break
            if source.tag and item.head != source.tag:
                continue
            take = min(money, owed[id(item)])
            if take > 0:
                paid.append((source.ref, item, int(take)))
                owed[id(item)] -= take
                money -= take
    return paid
