"""Method mixed: a fixed percent of a common cost by area, the rest by consumption
(docs/apportionment.md "Mixed"), the kernel against the reference and through the engine."""

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.apportion.largest_remainder import PERCENT_UNITS, split_two_ways
from rating.errors import InputError
from rating.model.groups import Group, Member, groups_from_table
from rating.reference.apportion import split_mixed_reference
from tests.test_apportion import MEMBERS, brief, codes, run, world


@st.composite
def mixed_groups(draw):
    size = draw(st.integers(1, 30))
    areas = draw(st.lists(st.integers(0, 10**9), min_size=size, max_size=size).filter(any))
    consumptions = draw(st.lists(st.integers(0, 10**9) | st.sampled_from([0, 1]), min_size=size,
                                 max_size=size).filter(any))
    percent = draw(st.integers(0, 100 * 10**6).map(lambda n: Decimal(n).scaleb(-6)) |
                   st.sampled_from([Decimal(0), Decimal(30), Decimal("33.333333"), Decimal(100)]))
    total = draw(st.integers(0, 2**62))
    keys = draw(st.permutations(range(size)))
    return total, percent, areas, consumptions, keys


@given(st.lists(mixed_groups(), min_size=1, max_size=5))
def test_mixed_kernel_equals_the_reference_and_sums_to_each_total(groups):
    offsets = np.cumsum([0] + [len(g[2]) for g in groups])
    shares = split_two_ways(
        [g[0] for g in groups], offsets, np.concatenate([g[2] for g in groups]),
        np.concatenate([g[3] for g in groups]), [int(g[1].scaleb(6)) for g in groups],
        np.concatenate([g[4] for g in groups])).tolist()
    for i, (total, percent, areas, consumptions, keys) in enumerate(groups):
        mine = shares[offsets[i]:offsets[i + 1]]
        assert mine == split_mixed_reference(total, percent, areas, consumptions, keys)
        assert sum(mine) == total


def test_thirty_percent_by_area_seventy_by_consumption():
    # 904.00: 271.20 by area 100:50:50, 632.80 by consumption 60:30:10
    shares = split_two_ways([90400], [0, 3], [100, 50, 50], [60, 30, 10], [30 * 10**6], [0, 1, 2])
    assert shares.tolist() == [13560 + 37968, 6780 + 18984, 6780 + 6328]


def test_the_area_part_is_cut_exactly_once():
    # 0.01 at 50/50: the two parts tie, the area part takes the unit, and the largest area gets it.
    assert split_mixed_reference(1, Decimal(50), [1, 3], [5, 0], [0, 1]) == [0, 1]
    assert split_two_ways([1], [0, 2], [1, 3], [5, 0], [PERCENT_UNITS // 2], [0, 1]).tolist() == [0, 1]


def test_a_lift_cost_split_thirty_seventy_through_the_engine():
    config = world()
    group = Group("lift", MEMBERS, method="mixed", area_percent=Decimal(30), basis="cost",
                  common_meters=("LIFT",))
    _, lines, anomalies = run(config, [group], {"M101": 60, "M102": 30, "M103": 10, "LIFT": "100.5"})
    # 100.5 kWh × 8 + 100 = 904.00; the quantity column splits 100.5 kWh the same way:
    # 30.150 by area (15.075, 7.538, 7.537: the tie to the lower id) + 70.350 by consumption.
    assert brief(lines) == [
        ("lift", "share", "A-101", None, "57.285", "515.28", None),
        ("lift", "share", "A-102", None, "28.643", "257.64", None),
        ("lift", "share", "A-103", None, "14.572", "131.08", None),
        ("lift", "source", "SOC", "LIFT", "-100.500", "-904.00", None),
    ]
    assert codes(anomalies) == []
    assert set(lines.column("method").to_pylist()) == {"mixed"}


def test_a_period_nobody_consumed_in_is_held_or_split_equally_by_policy():
    config = world()
    quantities = {"LIFT": 10}  # 180.00 of cost, no flat consumed
    held = Group("lift", MEMBERS, method="mixed", area_percent=Decimal(30), common_meters=("LIFT",))
    _, lines, anomalies = run(config, [held], quantities)
    assert [r["role"] for r in lines.to_pylist()] == [] and codes(anomalies) == [
        ("lift", "zero_weights", None, "held")]
    equal = Group("lift", MEMBERS, method="mixed", area_percent=Decimal(30), common_meters=("LIFT",),
                  on_zero_weights="equal")
    _, lines, _ = run(config, [equal], quantities)
    # 54.00 by area 100:50:50, 126.00 equally
    shares = [str(r["amount"]) for r in lines.to_pylist() if r["role"] == "share"]
    assert shares == ["69.00", "55.50", "55.50"]


@pytest.mark.parametrize("settings, field, words", [
    ({"method": "mixed"}, "area_percent", "is missing"),
    ({"method": "mixed", "area_percent": "130"}, "area_percent", "0..100"),
    ({"method": "mixed", "area_percent": "thirty"}, "area_percent", "is not a number"),
    ({"method": "mixed", "area_percent": "30.0000001"}, "area_percent", "more than 6 decimals"),
    ({"method": "mixed", "area_percent": "30", "basis": "quantity"}, "basis", "must be cost"),
    ({"method": "area", "area_percent": "30"}, "area_percent", "only used by method 'mixed'"),
])
def test_bad_mixed_groups_are_refused_naming_file_group_and_field(settings, field, words):
    table = pa.table({"group_id": ["lift", "lift"], "account_id": ["A-101", "A-102"],
                      "common_meters": ["LIFT", ""], **{k: [v, ""] for k, v in settings.items()}})
    with pytest.raises(InputError) as caught:
        groups_from_table(table, where="groups.csv")
    assert caught.value.where == f"groups.csv group 'lift' {field}" and words in caught.value.message


def test_mixed_groups_load_from_a_file_with_their_percent():
    table = pa.table({"group_id": ["lift", "lift"], "account_id": ["A-101", "A-102"],
                      "method": ["mixed", ""], "area_percent": ["30", ""], "common_meters": ["LIFT", ""]})
    (group,) = groups_from_table(table, where="groups.csv")
    assert group.method == "mixed" and group.area_percent == Decimal(30)
    assert group.members == (Member("A-101"), Member("A-102"))
