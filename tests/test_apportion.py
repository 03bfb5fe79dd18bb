"""The Cython split (through rating.apportion.split) against the reference, and the
engine integration (prepare, pricing, shared_area_lines) on a small society."""

import datetime as dt
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating.apportion.largest_remainder import split, split_amount
from rating.apportion.lines import shared_area_lines
from rating.apportion.plan import prepare
from rating.apportion.shapes import apportion_anomalies_schema, shared_lines_schema
from rating.config.loader import Config
from rating.config.tariff_file import tariffs_from_toml
from rating.consumption.period_totals import PeriodTotals
from rating.consumption.quantities import PeriodQuantities
from rating.engine import consumption_table
from rating.errors import AmountOverflowError, InputError
from rating.model.groups import Group, Groups, Member
from rating.model.registry import Account, Meter, Registry
from rating.model.site import Cycle, Site
from rating.pricing.pricer import price_periods
from rating.reference.apportion import split_groups_reference


@st.composite
def many_groups(draw, max_groups=8, max_members=40, max_total=10**12, max_weight=10**6):
    """Several groups with unique keys per group, as `split` takes them."""
    sizes = draw(st.lists(st.integers(0, max_members), min_size=0, max_size=max_groups))
    weight = st.integers(0, max_weight) | st.sampled_from([0, 1, max_weight])
    offsets, totals, weights, keys = [0], [], [], []
    for size in sizes:
        w = draw(st.lists(weight, min_size=size, max_size=size))
        if size and sum(w) == 0 and draw(st.booleans()):
            w[0] = 1
        totals.append(draw(st.integers(0, max_total)) if sum(w) else 0)
        keys += draw(st.permutations(range(size * 3)))[:size]
        weights += w
        offsets.append(offsets[-1] + size)
    return totals, offsets, weights, keys


def as_arrays(group):
    return [np.array(x, dtype=np.int64) for x in group]


@given(many_groups())
def test_kernel_equals_reference(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups(max_total=2**63 - 1, max_weight=2**62 // 40))
def test_kernel_equals_reference_with_128_bit_products(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups(max_groups=2, max_members=400, max_weight=3))
def test_kernel_equals_reference_on_large_groups_with_many_ties(group):
    totals, offsets, weights, keys = group
    assert split(*as_arrays(group)).tolist() == split_groups_reference(totals, offsets, weights, keys)


@given(many_groups())
def test_shares_sum_to_totals_each_within_one_unit(group):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    for g, total in enumerate(totals):
        lo, hi = offsets[g], offsets[g + 1]
        assert shares[lo:hi].sum() == total
        w_sum = sum(weights[lo:hi])
        if w_sum == 0:
            assert not shares[lo:hi].any()
            continue
        for share, w in zip(shares[lo:hi], weights[lo:hi], strict=True):
            assert abs(int(share) - Fraction(total * w, w_sum)) < 1


@given(many_groups(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_row_order(group, random):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    order = []
    for g in random.sample(range(len(totals)), len(totals)):
        members = list(range(offsets[g], offsets[g + 1]))
        random.shuffle(members)
        order.append((g, members))
    new_offsets = [0]
    for _, members in order:
        new_offsets.append(new_offsets[-1] + len(members))
    rows = [i for _, members in order for i in members]
    reshuffled = split(
        [totals[g] for g, _ in order], new_offsets, [weights[i] for i in rows], [keys[i] for i in rows]
    )
    assert dict(zip(rows, reshuffled.tolist(), strict=True)) == dict(enumerate(shares.tolist()))


@given(many_groups())
def test_twice_the_weight_never_gets_less(group):
    totals, offsets, weights, keys = group
    shares = split(*as_arrays(group))
    for g in range(len(totals)):
        w = np.array(weights[offsets[g] : offsets[g + 1]])
        s = shares[offsets[g] : offsets[g + 1]]
        larger = w[:, None] > w[None, :]
        assert (s[:, None] >= s[None, :])[larger].all()


def test_hundred_over_three_equal_units():
    assert split([10000], [0, 3], [1, 1, 1], [0, 1, 2]).tolist() == [3334, 3333, 3333]
    assert split_amount("100.00", {"A-103": 1, "A-101": 1, "A-102": 1}) == {
        "A-101": Decimal("33.34"),
        "A-102": Decimal("33.33"),
        "A-103": Decimal("33.33"),
    }


def test_one_large_group_uses_selection_correctly():
    rng = np.random.default_rng(7)
    n = 20_000
    weights = rng.integers(0, 5, n)
    keys = rng.permutation(n)
    for total in (0, 1, n // 2, n - 1, 10**9 + 7):
        got = split([total], [0, n], weights, keys).tolist()
        assert got == split_groups_reference([total], [0, n], weights.tolist(), keys.tolist())


def test_empty_input_and_empty_groups():
    assert split([], [0], [], []).tolist() == []
    assert split([0, 5, 0], [0, 0, 2, 2], [1, 1], [0, 1]).tolist() == [3, 2]


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (([1.5], [0, 1], [1], [0]), InputError, "integers"),
        (([5], [0, 2], [1], [0]), InputError, "offsets"),
        (([5], [0, 1, 1], [1], [0]), InputError, "offsets"),
        (([5], [0, 1], [1], [0, 1]), InputError, "keys"),
        (([-5], [0, 1], [1], [0]), InputError, ">= 0"),
        (([5], [0, 1], [-1], [0]), InputError, ">= 0"),
        (([5], [0, 2], [0, 0], [0, 1]), InputError, "no weight"),
        (([5], [0, 2], [1, 1], [3, 3]), InputError, "unique"),
        (([5], [0, 2], [2**62, 2**62], [0, 1]), AmountOverflowError, "sum"),
        (([5], [0, 1], np.array([2**64 - 1], dtype=np.uint64), [0]), AmountOverflowError, "int64"),
        (([[5]], [0, 1], [1], [0]), InputError, "one-dimensional"),
    ],
)
def test_split_refuses_bad_input(args, error, words):
    with pytest.raises(error, match=words):
        split(*args)


def test_split_amount_refuses_finer_total_and_negative_weights():
    with pytest.raises(InputError, match="decimals"):
        split_amount("1.005", {"A": 1})
    with pytest.raises(InputError, match=">= 0"):
        split_amount("1.00", {"A": -1, "B": 2})
    assert split_amount("0.05", {"A": "0.5", "B": "0.25"}) == {"A": Decimal("0.03"), "B": Decimal("0.02")}


# -- engine integration: prepare, price, shared_area_lines --------------------------

TARIFFS = """
[[tariff]]
id = "DOM"
effective_from = 2025-01-01
[tariff.energy]
mode = "graduated"
slabs = [{ upto = 50, price = 5 }, { price = 7 }]

[[tariff]]
id = "COMMON"
effective_from = 2025-01-01
fixed_charge = 100
[tariff.energy]
mode = "graduated"
slabs = [{ price = 8 }]

[[tariff]]
id = "TOU"
effective_from = 2025-01-01
[tariff.tou]
mode = "price"
periods = [{ name = "peak", price = 9 }, { name = "off", price = 4 }]
schedules = [{ spans = { peak = ["18:00-22:00"], off = ["00:00-18:00", "22:00-24:00"] } }]
"""
JAN = (dt.date(2026, 1, 1) - dt.date(1970, 1, 1)).days
FLATS = ("A-101", "A-102", "A-103")


def world(areas=("100", "50", "50"), cycles=(None, None, None), tou_flat=False) -> Config:
    meters = [Meter(f"M{a[2:]}", a, "TOU" if tou_flat and a == "A-103" else "DOM", unit="kWh")
              for a in FLATS]
    meters += [Meter("LIFT", "SOC", "COMMON", unit="kWh"), Meter("MAIN", "SOC", "COMMON", unit="kWh"),
               Meter("W101", "A-101", "DOM", unit="m3")]
    accounts = [Account(a, area=Decimal(area), cycle=cycle)
                for a, area, cycle in zip(FLATS, areas, cycles, strict=True)]
    registry = Registry(meters, accounts + [Account("SOC")])
    return Config(site=Site(), registry=registry, tariffs=tariffs_from_toml(TARIFFS, where="t"))


def usage(config: Config, quantities: dict) -> PeriodQuantities:
    """One January period per meter; a tuple is a TOU vector."""
    registry = config.registry
    rows = [(registry.index_of(pa.array([m]))[0], v if isinstance(v, tuple) else (v,))
            for m, v in quantities.items()]
    return PeriodQuantities(
        meter_index=np.array([r[0] for r in rows], np.int32),
        period_start=np.full(len(rows), JAN, np.int32),
        period_end=np.full(len(rows), JAN + 31, np.int32),
        qty=np.array([[int(Decimal(str(x)) * 1000) for x in r[1]] + [0] * (2 - len(r[1])) for r in rows],
                     np.int64),
    )


def run(config: Config, groups: list[Group], quantities: dict):
    """What the engine does: consumption table -> prepare -> add the delta to
    the period totals -> price -> shared_area_lines."""
    periods = usage(config, quantities)
    prepared = prepare(consumption_table(periods, config), Groups.of(groups), config=config)
    totals = PeriodTotals.empty(2).merge(periods).merge(prepared.quantity_delta)
    charges = price_periods(totals.as_quantities(), registry=config.registry, tariffs=config.tariffs,
                            site=config.site)
    lines, anomalies = shared_area_lines(prepared, charges)
    assert lines.schema == shared_lines_schema(config.site, config.registry.meter_ids.type)
    assert anomalies.schema == apportion_anomalies_schema(config.registry.meter_ids.type)
    return charges, lines, anomalies


def brief(lines: pa.Table) -> list[tuple]:
    return [(r["group_id"], r["role"], r["account_id"], r["meter_id"], str(r["quantity"]), str(r["amount"]),
             None if r["weight"] is None else f"{r['weight'].normalize():f}")
            for r in lines.to_pylist()]


def codes(anomalies: pa.Table) -> list[tuple]:
    return [(r["group_id"], r["code"], r["account_id"], r["action"]) for r in anomalies.to_pylist()]


def energy(charges: pa.Table, meter: str) -> Decimal:
    return sum((r["amount"] for r in charges.to_pylist() if r["meter_id"] == meter), Decimal(0))


MEMBERS = tuple(Member(a) for a in ("A-103", "A-101", "A-102"))  # any order


def test_lift_cost_by_area_and_master_minus_sub_meters_by_quantity():
    config = world()
    groups = [
        Group("lift", MEMBERS, method="area", basis="cost", common_meters=("LIFT",)),
        Group("main", MEMBERS, method="equal", basis="quantity", master_meter="MAIN"),
    ]
    charges, lines, anomalies = run(config, groups, {"M101": 60, "M102": 30, "M103": 10, "LIFT": "100.5",
                                                    "MAIN": 130})
    # main: 130 - (60 + 30 + 10) = 30 kWh, 10 each, priced on each flat's own slabs.
    assert energy(charges, "M101") == Decimal("390.00")  # 50 x 5 + 20 x 7
    assert energy(charges, "M102") == Decimal("200.00")
    assert energy(charges, "MAIN") == Decimal("100.00")  # the fixed charge stays with the society
    # lift: 100.5 x 8 + 100 = 904.00 split 100 : 50 : 50.
    assert brief(lines) == [
        ("main", "source", "SOC", "MAIN", "-30.000", "0.00", None),
        ("main", "share", "A-101", "M101", "10.000", "0.00", "1"),
        ("main", "share", "A-102", "M102", "10.000", "0.00", "1"),
        ("main", "share", "A-103", "M103", "10.000", "0.00", "1"),
        ("lift", "share", "A-101", None, "50.250", "452.00", "100"),
        ("lift", "share", "A-102", None, "25.125", "226.00", "50"),
        ("lift", "share", "A-103", None, "25.125", "226.00", "50"),
        ("lift", "source", "SOC", "LIFT", "-100.500", "-904.00", None),
    ]
    assert anomalies.num_rows == 0


def test_hundred_rupees_over_three_equal_flats_adds_up():
    config = world()
    groups = [Group("club", MEMBERS, method="equal", basis="cost", common_meters=("LIFT",))]
    _, lines, _ = run(config, groups, {"LIFT": 0})  # cost: the fixed charge 100.00
    shares = [r for r in brief(lines) if r[1] == "share"]
    assert [(r[2], r[5]) for r in shares] == [("A-101", "33.34"), ("A-102", "33.33"), ("A-103", "33.33")]


def test_split_by_each_units_own_consumption_and_by_given_weights():
    config = world()
    groups = [
        Group("lift", MEMBERS, method="consumption", basis="cost", common_meters=("LIFT",)),
        Group("main", tuple(Member(a, weight=Decimal(w)) for a, w in zip(FLATS, ("1", "2", "0.5"),
                                                                            strict=True)),
              method="weight", basis="cost", master_meter="MAIN"),
    ]
    _, lines, _ = run(config, groups, {"M101": 60, "M102": 30, "M103": 10, "LIFT": 0, "MAIN": 135})
    rows = brief(lines)
    # lift: 100.00 by 60 : 30 : 10 (W101 is water, not kWh: not counted)
    assert [r[5] for r in rows if r[0] == "lift" and r[1] == "share"] == ["60.00", "30.00", "10.00"]
    # main: 35 kWh x 8 + 100 = 380.00 by 1 : 2 : 0.5
    assert [r[5] for r in rows if r[0] == "main" and r[1] == "share"] == ["108.57", "217.14", "54.29"]
    assert [r[5] for r in rows if r[0] == "main" and r[1] == "source"] == ["-380.00"]


def test_sub_meters_exceeding_the_master_are_reported_not_spread():
    config = world()
    held = Group("main", MEMBERS, method="equal", basis="quantity", master_meter="MAIN")
    charges, lines, anomalies = run(config, [held], {"M101": 60, "M102": 30, "M103": 10, "MAIN": 90})
    assert codes(anomalies) == [("main", "negative_common", None, "held")]
    assert anomalies.column("meter_id").to_pylist() == ["MAIN"]
    assert lines.num_rows == 0
    assert energy(charges, "M101") == Decimal("320.00")  # its own 60 kWh only
    assert energy(charges, "MAIN") == Decimal("100.00")  # priced at zero, not at its gross 90

    clamped = Group("main", MEMBERS, method="equal", basis="quantity", master_meter="MAIN",
                    on_negative="clamp")
    _, lines, anomalies = run(config, [clamped], {"M101": 60, "M102": 30, "M103": 10, "MAIN": 90})
    assert codes(anomalies) == [("main", "negative_common", None, "clamped")]
    assert {r[4] for r in brief(lines)} == {"0.000"}


def test_all_zero_weights_hold_or_fall_back_to_equal_shares():
    config = world()
    group = Group("lift", MEMBERS, method="consumption", basis="cost", common_meters=("LIFT",))
    _, lines, anomalies = run(config, [group], {"LIFT": 1})
    assert lines.num_rows == 0
    assert codes(anomalies) == [("lift", "zero_weights", None, "held")]
    equal = Group("lift", MEMBERS, method="consumption", basis="cost", common_meters=("LIFT",),
                  on_zero_weights="equal")
    _, lines, anomalies = run(config, [equal], {"LIFT": 1})
    assert [r[5] for r in brief(lines)] == ["36.00", "36.00", "36.00", "-108.00"]
    assert codes(anomalies) == [("lift", "zero_weights", None, "equal_shares")]


@pytest.mark.parametrize(
    ("policy", "action", "amounts"),
    [
        ("report", "held", []),
        ("zero", "zero_weight", ["108.00", "0.00", "0.00", "-108.00"]),
        ("equal", "equal_shares", ["36.00", "36.00", "36.00", "-108.00"]),
    ],
)
def test_a_unit_without_area(policy, action, amounts):
    config = world(areas=("100", "0", "0"))
    group = Group("lift", MEMBERS, method="area", basis="cost", common_meters=("LIFT",),
                  on_missing_area=policy)
    _, lines, anomalies = run(config, [group], {"LIFT": 1})
    assert [r[5] for r in brief(lines)] == amounts
    assert codes(anomalies) == [("lift", "no_area", "A-102", action), ("lift", "no_area", "A-103", action)]


def test_area_from_the_groups_file_overrides_the_registry():
    config = world(areas=("0", "0", "0"))
    members = (Member("A-101", area=Decimal("3")), Member("A-102", area=Decimal("1")),
               Member("A-103", area=Decimal("0.5")))
    _, lines, anomalies = run(config, [Group("g", members, common_meters=("LIFT",))], {"LIFT": 1})
    assert [r[5] for r in brief(lines)] == ["72.00", "24.00", "12.00", "-108.00"]
    assert anomalies.num_rows == 0


def test_unknown_member_holds_the_group_or_is_excluded():
    config = world()
    members = MEMBERS + (Member("B-999"),)
    _, lines, anomalies = run(config, [Group("g", members, method="equal", common_meters=("LIFT",))],
                              {"LIFT": 1})
    assert lines.num_rows == 0
    assert codes(anomalies) == [("g", "unknown_unit", "B-999", "held")]
    group = Group("g", members, method="equal", common_meters=("LIFT",), on_unknown_unit="exclude")
    _, lines, anomalies = run(config, [group], {"LIFT": 1})
    assert [r[5] for r in brief(lines)] == ["36.00", "36.00", "36.00", "-108.00"]
    assert codes(anomalies) == [("g", "unknown_unit", "B-999", "excluded")]


def test_billing_cycles_that_do_not_line_up_are_reported():
    config = world(cycles=(None, Cycle(15), None))
    _, lines, anomalies = run(config, [Group("g", MEMBERS, method="equal", common_meters=("LIFT",))],
                              {"LIFT": 1})
    assert lines.num_rows == 0
    assert codes(anomalies) == [("g", "cycle_mismatch", None, "held")]


def test_quantity_split_needs_a_meter_of_the_groups_unit():
    config = world()
    group = Group("water", MEMBERS, method="equal", basis="quantity", common_meters=("LIFT",),
                  meter_unit="m3")
    charges, lines, anomalies = run(config, [group], {"LIFT": 3})
    assert codes(anomalies) == [("water", "no_target_meter", "A-102", "held"),
                                ("water", "no_target_meter", "A-103", "held")]
    assert lines.num_rows == 0
    assert energy(charges, "LIFT") == Decimal("124.00")  # held: stays with the society


def test_quantity_share_follows_the_common_meters_time_of_use_or_the_units_own():
    config = world(tou_flat=True)
    group = Group("main", MEMBERS, method="equal", basis="quantity", master_meter="MAIN",
                  sub_meters=("M101", "M102"))
    charges, lines, _ = run(config, [group], {"M101": 10, "M102": 10, "M103": (2, 6), "MAIN": 35})
    # 15 kWh -> 5 each; M103 is on a TOU tariff the master's is not: its own 2 : 6 profile.
    m103 = [(r["tou_period"], str(r["quantity"])) for r in charges.to_pylist() if r["meter_id"] == "M103"]
    assert m103 == [("peak", "3.250"), ("off", "9.750")]


def test_unknown_source_meter_is_an_error():
    config = world()
    with pytest.raises(InputError, match="NOPE"):
        run(config, [Group("g", MEMBERS, common_meters=("NOPE",))], {"LIFT": 1})


def test_lines_do_not_depend_on_the_order_of_rows_or_members():
    config = world()
    quantities = {"M101": 61, "M102": 29, "M103": 11, "LIFT": "100.7", "MAIN": 131}
    groups = [Group("lift", MEMBERS, method="consumption", common_meters=("LIFT",)),
              Group("main", MEMBERS, method="equal", basis="quantity", master_meter="MAIN")]
    _, lines, _ = run(config, groups, quantities)
    reversed_groups = [Group(g.group_id, g.members[::-1], method=g.method, basis=g.basis,
                             common_meters=g.common_meters, master_meter=g.master_meter) for g in groups]
    _, again, _ = run(config, reversed_groups, dict(reversed(list(quantities.items()))))
    assert sorted(brief(lines), key=str) == sorted(brief(again), key=str)


@given(st.lists(st.integers(0, 10**6), min_size=3, max_size=3), st.integers(0, 10**7))
def test_cost_shares_sum_exactly_to_the_common_cost(areas_milli, lift_milli):
    config = world(areas=tuple(str(Decimal(a) / 1000) for a in areas_milli))
    group = Group("lift", MEMBERS, method="area", common_meters=("LIFT",), on_missing_area="zero",
                  on_zero_weights="equal")
    _, lines, _ = run(config, [group], {"LIFT": Decimal(lift_milli) / 1000})
    rows = lines.to_pylist()
    assert sum(r["amount"] for r in rows) == 0  # shares and the source line balance
    shares = [r for r in rows if r["role"] == "share"]
    assert sum(r["amount"] for r in shares) == shares[0]["base_amount"]
    assert sum(r["quantity"] for r in shares) == shares[0]["base_quantity"]


def test_examples_in_the_documentation_run():
    import doctest
    from pathlib import Path

    docs = Path(__file__).resolve().parent.parent / "docs" / "apportionment.md"
    if not docs.exists():  # a copy of the tree without docs (the debug-build test)
        pytest.skip("docs/apportionment.md not in this tree")
    text = re.sub(r"^```\w*$", "", docs.read_text(encoding="utf-8"), flags=re.M)  # fences end outputs
    test = doctest.DocTestParser().get_doctest(text, {}, "apportionment.md", str(docs), 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4
