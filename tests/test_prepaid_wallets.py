"""Wallet policy: the [prepaid] table, friendly hours and the state machine."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.errors import ConfigError
from rating.model.site import Site
from rating.prepaid.sitedocs import table_from_bytes
from rating.prepaid.store.shards import SHARDS, shard_of
from rating.prepaid.wallets import (
    EventType,
    PrepaidPolicy,
    Status,
    WalletPolicy,
    policy_from_mapping,
    status_after_rebuild,
    transition,
    with_account_overrides,
)

SITE = Site(time_zone="Asia/Kolkata", holidays=frozenset({dt.date(2025, 5, 1)}))
E = EventType


def at_local(year, month, day, hour, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SITE.zone)


def test_the_prepaid_table_reads_money_in_minor_units_and_spans_in_local_minutes():
    policy = policy_from_mapping({
        "account_lines_wallet": "maintenance",
        "defaults": {"friendly_days": ["holiday"]},
        "wallets": {"electricity": {"low_balance": "150.25", "emergency_credit": 50,
                                    "restore_above": 10, "friendly_hours": ["18:00-09:00", "12:00-13:30"]},
                    "parking": {"low_balance": 0}},
    }, SITE)
    electricity = policy.of("electricity")
    assert (electricity.low_balance_minor, electricity.emergency_credit_minor,
            electricity.restore_above_minor) == (15_025, 5_000, 1_000)
    assert electricity.cut_off and electricity.friendly_minutes == ((1080, 540), (720, 810))
    assert electricity.friendly_days == frozenset({"holiday"})  # from the defaults
    assert not policy.of("parking").cut_off and not policy.of("maintenance").cut_off
    assert policy.of("water").cut_off  # unlisted utility: defaults, cut-off by kind


@pytest.mark.parametrize("table, message", [
    ({"wallets": {"maintenance": {"cut_off": True}}}, "art. 944"),
    ({"wallets": {"special_maintenance_fund": {"cut_off": True}}}, "cannot cut"),
    ({"wallets": {"electricity": {"low_balance": "1.005"}}}, "minor unit"),
    ({"wallets": {"electricity": {"friendly_hours": ["25:00-01:00"]}}}, "span"),
    ({"wallets": {"electricity": {"friendly_days": ["someday"]}}}, "unknown day"),
    ({"wallets": {"electricity": {"emergency_credit": -1}}}, ">= 0"),
    ({"wallets": {"electricity": {"emergency_credit": 10, "restore_above": -20}}}, "restore_above"),
    ({"wallets": {"Electricity": {}}}, "wallet name"),
    ({"wallet": {}}, "unknown key"),
])
def test_bad_prepaid_tables_are_refused_naming_the_field(table, message):
    with pytest.raises(ConfigError) as info:
        policy_from_mapping(table, SITE)
    assert message in str(info.value)
    assert "[prepaid]" in str(info.value)


def test_friendly_hours_wrap_midnight_and_friendly_days_cover_holidays_and_weekdays():
    p = WalletPolicy("electricity", cut_off=True, friendly_minutes=((18 * 60, 9 * 60),),
                     friendly_days=frozenset({"sunday", "holiday"}))
    assert p.is_friendly(at_local(2025, 5, 5, 21, 30), SITE)  # Monday night
    assert p.is_friendly(at_local(2025, 5, 6, 8, 59), SITE)
    assert not p.is_friendly(at_local(2025, 5, 6, 9, 0), SITE)
    assert not p.is_friendly(at_local(2025, 5, 6, 17, 59), SITE)
    assert p.is_friendly(at_local(2025, 5, 1, 12, 0), SITE)  # holiday
    assert p.is_friendly(at_local(2025, 5, 4, 12, 0), SITE)  # Sunday
    assert not p.is_friendly(at_local(2025, 5, 3, 12, 0), SITE)  # Saturday is not listed
    # an aware UTC instant is judged in the site's zone: 16:00 UTC is 21:30 in Kolkata
    assert p.is_friendly(dt.datetime(2025, 5, 5, 16, 0, tzinfo=dt.timezone.utc), SITE)


P = WalletPolicy("electricity", low_balance_minor=100, emergency_credit_minor=50, restore_above_minor=20,
                 cut_off=True)


@pytest.mark.parametrize("status, balance, friendly, expected", [
    (Status.OK, 100, False, (Status.OK, [])),
    (Status.OK, 99, False, (Status.LOW, [(E.LOW_BALANCE, 100)])),
    (Status.LOW, 50, False, (Status.LOW, [])),
    (Status.LOW, 150, False, (Status.OK, [(E.RECOVERED, 100)])),
    (Status.OK, -50, False, (Status.LOW, [(E.LOW_BALANCE, 100)])),  # emergency credit reaches -50
    (Status.OK, -51, False, (Status.CUT_OFF, [(E.LOW_BALANCE, 100), (E.CUT_OFF, 0)])),
    (Status.LOW, -51, True, (Status.CUT_OFF_DEFERRED, [(E.CUT_OFF_DEFERRED, 0)])),
    (Status.CUT_OFF_DEFERRED, -60, True, (Status.CUT_OFF_DEFERRED, [])),
    (Status.CUT_OFF_DEFERRED, -60, False, (Status.CUT_OFF, [(E.CUT_OFF, 0)])),
    (Status.CUT_OFF_DEFERRED, 0, True, (Status.LOW, [(E.RESTORED, 0)])),
    (Status.CUT_OFF, -100, False, (Status.CUT_OFF, [])),
    (Status.CUT_OFF, 19, False, (Status.CUT_OFF, [])),  # above the cut line, below restore_above
    (Status.CUT_OFF, 20, True, (Status.LOW, [(E.RESTORED, 0)])),
    (Status.CUT_OFF, 500, False, (Status.OK, [(E.RESTORED, 0), (E.RECOVERED, 100)])),
])
def test_the_wallet_state_machine(status, balance, friendly, expected):
    alarm = P.alarm_of(status, 100 if status == Status.OK else 0)  # one level: warned unless OK
    moved = transition(P, status, balance, friendly, alarm)
    assert (moved.status, moved.events) == expected
    assert moved.alarm == (1 if moved.status != Status.OK else 0)


def test_a_wallet_that_cannot_cut_only_warns():
    maintenance = PrepaidPolicy().of("maintenance")
    assert transition(maintenance, Status.OK, -10**9, False, 0) == (Status.LOW, 1, [(E.LOW_BALANCE, 0)])


def test_rebuilt_states_follow_the_last_event():
    assert status_after_rebuild(P, E.CUT_OFF, 10**6) == Status.CUT_OFF
    assert status_after_rebuild(P, E.CUT_OFF_DEFERRED, -100) == Status.CUT_OFF_DEFERRED
    assert status_after_rebuild(P, E.RESTORED, 50) == Status.LOW
    assert status_after_rebuild(P, None, 500) == Status.OK


def test_shards_are_a_stable_hash_of_the_account_id():
    assert shard_of("F0001") == shard_of("F0001") < SHARDS
    assert len({shard_of(f"A{i}") for i in range(2000)}) == SHARDS
    assert shard_of("F0001") == 12  # crc32: the same in every process and version


def accounts_table(header: str, *rows: str):
    """An accounts table as LoadConfig and SiteDocs read one: CSV, every column text."""
    return table_from_bytes("\n".join([header, *rows]).encode(), where="accounts")


def test_accounts_may_carry_their_own_wallet_policy_in_wallet_dot_key_columns():
    site_policy = policy_from_mapping({"wallets": {"electricity": {"low_balance": 100, "emergency_credit": 20,
                                                                   "friendly_hours": ["18:00-09:00"]}}}, SITE)
    header = "account_id,name,electricity.emergency_credit,electricity.cut_off,water.low_balance"
    table = accounts_table(header, "F1,Rao,500,,", "F2,Iyer,,false,", "F3,Das,,,75.50", "F4,Sen,,,")
    policy = with_account_overrides(site_policy, table, SITE)
    assert policy.of("electricity", "F1") == replace(policy.of("electricity"), emergency_credit_minor=50_000)
    assert not policy.of("electricity", "F2").cut_off
    assert policy.of("water", "F3").low_balance_minor == 7_550 and policy.of("water", "F3").cut_off
    assert policy.of("electricity", "F4") == policy.of("electricity")  # empty cells: the site's policy
    assert policy.of("electricity", "F1").friendly_minutes == ((1080, 540),)  # hours stay the site's
    assert set(policy.overrides) == {("F1", "electricity"), ("F2", "electricity"), ("F3", "water")}
    assert policy.overrides_of(["F1", "F4", "F3"], ["electricity", "electricity", "electricity"]) == {
        ("F1", "electricity"): policy.of("electricity", "F1")}


@pytest.mark.parametrize("header, row, message", [
    ("account_id,electricity.friendly_hours", "F1,x", "unknown wallet setting 'friendly_hours'"),
    ("account_id,Electricity.low_balance", "F1,5", "column 'Electricity.low_balance'"),
    ("account_id,electricity.low_balance", "F1,lots", r"accounts row 1 \(F1\), electricity.low_balance"),
    ("account_id,electricity.cut_off", "F1,maybe", "electricity.cut_off: must be true or false"),
    ("account_id,maintenance.cut_off", "F1,true", "art. 944"),
    ("account_id,electricity.emergency_credit", "F1,-5", "must be >= 0"),
])
def test_an_accounts_own_policy_is_checked_like_the_site_file_naming_row_and_column(header, row, message):
    with pytest.raises(ConfigError, match=message):
        with_account_overrides(PrepaidPolicy(), accounts_table(header, row), SITE)


# ---- warning levels ---------------------------------------------------------------------------

LEVELS = WalletPolicy("water", low_balance_minor=50_000, warning_levels_minor=(50_000, 10_000))


def test_low_balance_may_list_several_warning_levels_highest_first():
    policy = policy_from_mapping({"wallets": {"water": {"low_balance": [100, "500"]},
                                              "gas": {"low_balance": 200}}}, SITE)
    water = policy.of("water")
    assert (water.low_balance_minor, water.levels_minor) == (50_000, (50_000, 10_000))
    assert policy.of("gas").levels_minor == (20_000,)  # one level, as before
    accounts = accounts_table("account_id,name,area,tariff_id,water.low_balance",
                              "F-1,One,50,MAINT,800;300", "F-2,Two,50,MAINT,")
    own = with_account_overrides(policy, accounts, SITE)
    assert own.of("water", "F-1").levels_minor == (80_000, 30_000)
    assert own.of("water", "F-2").levels_minor == (50_000, 10_000)


@pytest.mark.parametrize("value, message, where", [
    ([500, 500], "listed twice", "[prepaid].wallets.water.low_balance"),
    ([], "1 to 8 levels", "[prepaid].wallets.water.low_balance"),
    (list(range(1, 10)), "1 to 8 levels", "[prepaid].wallets.water.low_balance"),
    ([500, "lots"], "not a number", "[prepaid].wallets.water.low_balance[1]"),
    ([500, 1.005], "minor unit", "[prepaid].wallets.water.low_balance[1]"),
    ([500, True], "not a number", "[prepaid].wallets.water.low_balance[1]"),
])
def test_bad_warning_levels_are_refused_naming_the_field(value, message, where):
    with pytest.raises(ConfigError) as info:
        policy_from_mapping({"wallets": {"water": {"low_balance": value}}}, SITE)
    assert message in info.value.message and info.value.where == where


def test_a_bad_level_in_an_accounts_cell_names_the_row_and_column():
    accounts = accounts_table("account_id,name,area,tariff_id,water.low_balance", "F-1,One,50,MAINT,800;x")
    with pytest.raises(ConfigError) as info:
        with_account_overrides(PrepaidPolicy(), accounts, SITE)
    assert info.value.where == "accounts row 1 (F-1), water.low_balance[1]"


def run(policy, balances):
    """Walk a wallet through balances from 0, `low` there when 0 is below a level: the events of each step."""
    status = Status.LOW if policy.levels_below(0) else Status.OK
    alarm, previous, seen = policy.levels_below(0), 0, []
    for balance in balances:
        status, alarm, events = transition(policy, status, balance, False, alarm)
        seen.append(events)
        previous = balance
    return seen, status, alarm, previous


def test_a_level_warns_once_until_a_top_up_lifts_the_balance_above_it():
    seen, status, alarm, _ = run(LEVELS, [60_000, 45_000, 30_000, 8_000, 9_000, 20_000, 5_000, 70_000])
    assert seen == [[(E.RECOVERED, 10_000), (E.RECOVERED, 50_000)], [(E.LOW_BALANCE, 50_000)], [],
                    [(E.LOW_BALANCE, 10_000)], [],
                    [(E.RECOVERED, 10_000)], [(E.LOW_BALANCE, 10_000)],
                    [(E.RECOVERED, 10_000), (E.RECOVERED, 50_000)]]
    assert (status, alarm) == (Status.OK, 0)


def test_one_fall_through_both_levels_warns_each_and_a_cut_off_warns_those_not_yet_warned():
    assert run(LEVELS, [60_000, 5_000])[0][1] == [(E.LOW_BALANCE, 50_000), (E.LOW_BALANCE, 10_000)]
    cut = replace(LEVELS, name="electricity", cut_off=True, emergency_credit_minor=1_000)
    seen, status, alarm, _ = run(cut, [60_000, 40_000, -2_000, 30_000])
    assert seen[1:3] == [[(E.LOW_BALANCE, 50_000)], [(E.LOW_BALANCE, 10_000), (E.CUT_OFF, 0)]]
    assert seen[3] == [(E.RESTORED, 0), (E.RECOVERED, 10_000)]  # restored, and out of the lower level
    assert (status, alarm) == (Status.LOW, 1)


def test_a_raised_level_warns_on_the_next_change_from_the_recorded_alarm():
    """The alarm is state: a level added above the balance warns at the next change;
    a new wallet (`ok`, nothing recorded) has warned nothing yet."""
    assert LEVELS.alarm_of(Status.OK, 0) == 0 and LEVELS.alarm_of(Status.LOW, 20_000) == 1
    raised = replace(LEVELS, low_balance_minor=90_000, warning_levels_minor=(90_000, 50_000, 10_000))
    assert transition(raised, Status.OK, 79_000, False, 0).events == [(E.LOW_BALANCE, 90_000)]


@given(st.lists(st.integers(-100_000, 100_000), min_size=1, max_size=40),
       st.lists(st.integers(-50_000, 90_000), min_size=1, max_size=8, unique=True))
@settings(max_examples=300, deadline=None)
def test_levels_warn_and_recover_exactly_when_the_balance_crosses_them(balances, levels):
    """The reference: from one balance to the next, every level passed on the
    way down warns (highest first), every level passed on the way up recovers
    (lowest first), on a wallet that is never cut."""
    ordered = tuple(sorted(levels, reverse=True))
    policy = WalletPolicy("maintenance", low_balance_minor=ordered[0], warning_levels_minor=ordered)
    seen, *_ = run(policy, balances)
    previous = 0
    for balance, events in zip(balances, seen, strict=True):
        down = [(E.LOW_BALANCE, v) for v in ordered if balance < v <= previous]
        up = [(E.RECOVERED, v) for v in reversed(ordered) if previous < v <= balance]
        assert events == down + up
        previous = balance
