"""Reading apportionment groups from files and building them through the API."""

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rating.errors import InputError
from rating.model.groups import Group, Groups, Member, groups_from_table, load_groups

CSV = """group_id,account_id,area,weight,method,basis,common_meters,master_meter,sub_meters,on_negative
tower-A-lift,A-101,92.5,,area,cost,LIFT-A;LIFT-A2,,,
tower-A-lift,A-102,120,,,,,,,
site-club,A-101,,2,weight,quantity,,MAIN,M101; M102,clamp
site-club,A-102,,1,weight,,,,,clamp
"""


def test_csv_with_group_settings_given_once(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text(CSV)
    groups = load_groups(path)
    lift, club = groups["tower-A-lift"], groups["site-club"]
    assert lift == Group(
        "tower-A-lift",
        (Member("A-101", area=Decimal("92.5")), Member("A-102", area=Decimal("120"))),
        method="area", basis="cost", common_meters=("LIFT-A", "LIFT-A2"),
    )
    assert club.master_meter == "MAIN" and club.sub_meters == ("M101", "M102")
    assert club.on_negative == "clamp" and club.basis == "quantity"
    assert [m.weight for m in club.members] == [Decimal(2), Decimal(1)]
    assert len(groups) == 2 and [g.group_id for g in groups] == ["tower-A-lift", "site-club"]


def test_parquet_with_typed_columns(tmp_path):
    table = pa.table({
        "group_id": ["g", "g"], "account_id": ["A-1", "A-2"], "area": [50.25, 75.0],
        "method": ["area", None], "common_meters": [["L1", "L2"], None],
    })
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path)
    group = load_groups(path)["g"]
    assert [m.area for m in group.members] == [Decimal("50.25"), Decimal("75.0")]
    assert group.common_meters == ("L1", "L2")


def test_defaults_are_area_cost_and_report():
    group = groups_from_table(pa.table({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"]}))["g"]
    assert (group.method, group.basis, group.on_negative, group.on_zero_weights, group.on_missing_area,
            group.on_unknown_unit) == ("area", "cost", "report", "report", "report", "report")
    assert group.sub_meters is None and group.meter_unit is None


@pytest.mark.parametrize(
    ("columns", "words"),
    [
        ({"group_id": ["g"], "account_id": ["A"], "method": ["area"], "common_meters": ["L"],
          "basis": ["cost"], "colour": ["red"]}, "unknown column"),
        ({"group_id": ["g"]}, "missing column 'account_id'"),
        ({"group_id": [None], "account_id": ["A"]}, "row 1: group_id is empty"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "method": ["floor"]}, "method"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "basis": ["money"]}, "basis"),
        ({"group_id": ["g"], "account_id": ["A"]}, "either common_meters or a master_meter"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "master_meter": ["M"]}, "either"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "sub_meters": ["S"]},
         "sub_meters need a master_meter"),
        ({"group_id": ["g", "g"], "account_id": ["A", "A"], "common_meters": ["L", None]}, "member twice"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "area": ["-1"]}, "area"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "area": ["big"]}, "not a number"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "area": ["1.0000001"]},
         "decimals"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "method": ["weight"]},
         "weight is empty"),
        ({"group_id": ["g"], "account_id": ["A"], "common_meters": ["L"], "on_negative": ["spread"]},
         "on_negative"),
        ({"group_id": ["g", "g"], "account_id": ["A", "B"], "common_meters": ["L", "K"]},
         "common_meters 'L' on row 1 and 'K' on row 2"),
        ({"group_id": ["g", "h"], "account_id": ["A", "B"], "common_meters": ["L", "L"]},
         "source of groups 'g' and 'h'"),
        ({"group_id": ["g"], "account_id": ["A"], "master_meter": ["M"], "sub_meters": ["S;M"]},
         "also a sub-meter"),
    ],
)
def test_bad_files_say_what_and_where(columns, words):
    with pytest.raises(InputError, match=words):
        groups_from_table(pa.table(columns), where="groups.csv")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "groups.csv"
    path.write_text("group_id,account_id,method\ng,A,split\n")
    with pytest.raises(InputError) as info:
        load_groups(path)
    assert str(path) in str(info.value) and "group 'g'" in str(info.value)
    with pytest.raises(InputError, match="not found"):
        load_groups(tmp_path / "missing.csv")


def test_groups_through_the_api():
    tower = Group("tower", (Member("A-1"), Member("A-2")), method="equal", common_meters=("LIFT",))
    club = Group("club", (Member("A-1", weight=Decimal(3)),), method="weight", basis="quantity",
                 master_meter="MAIN", sub_meters=("M1",), on_zero_weights="equal")
    groups = Groups.of([tower, club])
    assert groups["club"].source_meters == ("MAIN",)
    assert tower.source_meters == ("LIFT",)
    with pytest.raises(InputError, match="duplicate group_id"):
        Groups.of([tower, tower])
    with pytest.raises(InputError, match="no members"):
        Group("empty", (), common_meters=("L",))
