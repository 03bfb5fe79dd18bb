"""Allocation's fast path equals its plain reference, whatever the items, sources and rule."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.billing.allocation import (
    CRITERIA,
    AllocationRule,
    Source,
    allocate,
    credit_sources,
    rule_from_mapping,
)
from rating.billing.documents import DuesItem, LineKind
from rating.errors import ConfigError
from rating.payments.allocation_reference import reference_allocation

HEADS = ("maintenance", "water", "late_fee", "interest", "deposit")
DAY = dt.date(2025, 4, 15)

items_st = st.lists(st.builds(
    DuesItem, st.sampled_from(HEADS), st.sampled_from(list(LineKind)), st.integers(-50_000, 10**12),
    st.integers(0, 400).map(lambda d: DAY + dt.timedelta(days=d)),
    st.sampled_from(["B/25-26/000001", "B/25-26/000002", "DN/25-26/00001", "IMPORT-1"])),
    max_size=12, unique_by=lambda i: (i.head, i.kind, i.bill_ref, i.due_date))
sources_st = st.lists(st.builds(Source, st.sampled_from(["R/1", "R/2", "R/3"]), st.integers(0, 10**12),
                                st.sampled_from(["", "", "", "water", "deposit"])), max_size=4)
rules_st = st.builds(AllocationRule, st.permutations(CRITERIA).map(tuple),
                     st.sampled_from(["principal_first", "interest_first"]),
                     st.lists(st.sampled_from(HEADS), unique=True).map(tuple))


@settings(max_examples=300, deadline=None)
@given(items_st, sources_st, rules_st, st.sampled_from(["", "B/25-26/000002", "B/25-26/999999"]))
def test_the_fast_allocation_equals_the_reference(items, sources, rule, bill):
    sources = credit_sources(items) + sources
    fast = [(a.source.ref, a.item, a.amount_minor) for a in allocate(items, sources, rule, bill=bill)]
    assert fast == reference_allocation(items, sources, rule, bill=bill)
    owed = sum(i.amount_minor for i in items if i.amount_minor > 0)
    untagged = all(not s.tag for s in sources)
    if untagged:  # nothing is lost or made: what is paid is the lesser of the money and the dues
        assert sum(a for _, _, a in fast) == min(owed, sum(s.amount_minor for s in sources))


def item(head: str, kind: LineKind, amount: int, days: int, bill: str) -> DuesItem:
    return DuesItem(head, kind, amount, DAY + dt.timedelta(days=days), bill)


OPEN = [item("maintenance", LineKind.CHARGE, 2_000, 0, "B1"), item("interest", LineKind.INTEREST, 300, 0,
                                                                   "B1"),
        item("water", LineKind.CHARGE, 500, 30, "B2"), item("late_fee", LineKind.LATE_FEE, 100, 30, "B2")]


@pytest.mark.parametrize(("table", "expected"), [
    ({}, ["B1 maintenance", "B1 interest", "B2 water", "B2 late_fee"]),
    ({"kinds": "interest_first"}, ["B1 interest", "B1 maintenance", "B2 late_fee", "B2 water"]),
    ({"order": ["kind", "due", "head"], "kinds": "interest_first"},
     ["B1 interest", "B2 late_fee", "B1 maintenance", "B2 water"]),
    ({"order": ["head", "due", "kind"], "heads": ["late_fee", "maintenance", "water"]},
     ["B2 late_fee", "B1 maintenance", "B2 water", "B1 interest"]),
])
def test_each_order_pays_the_items_in_its_turn(table, expected):
    rule = rule_from_mapping(table, where="payments.toml[allocation]")
    paid = allocate(OPEN, [Source("R/1", 10_000)], rule)
    assert [f"{a.item.bill_ref} {a.item.head}" for a in paid] == expected


@pytest.mark.parametrize(("table", "where"), [
    ({"order": ["due", "due"]}, "payments.toml[allocation].order"),
    ({"order": "due"}, "payments.toml[allocation].order"),
    ({"kinds": "interest_last"}, "payments.toml[allocation].kinds"),
    ({"heads": [1]}, "payments.toml[allocation].heads"),
    ({"oldest": True}, "payments.toml[allocation]"),
])
def test_a_bad_allocation_table_is_refused_naming_its_key(table, where):
    with pytest.raises(ConfigError) as refused:
        rule_from_mapping(table, where="payments.toml[allocation]")
    assert refused.value.where == where


def test_a_source_tagged_to_a_head_pays_only_that_head():
    paid = allocate(OPEN, [Source("R/1", 10_000, "water")], AllocationRule())
    assert [(a.item.head, a.amount_minor) for a in paid] == [("water", 500)]
