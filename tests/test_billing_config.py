"""billing.toml: a typed schema whose every error names the file and the key, and loads nothing."""

from __future__ import annotations

import pytest

from rating.billing.config import billing_path, load_billing
from rating.billing.rules import HeadKind
from rating.demo import generate_demo
from rating.errors import ConfigError, RatingError
from rating.site import Site, load_site_file

SITE = Site(name="Test CHS", currency="INR")
GOOD = """
[heads.maintenance]
kind = "area"
rate = 3.50

[heads.repair_fund]
kind = "fixed"
rate = 300

[heads.non_occupancy]
kind = "non_occupancy"
rate = 10
of = ["maintenance"]

[heads.water]
kind = "metered"
tariffs = ["WATER"]

[interest.interest]
method = "simple_daily"
rate = 21

[taxes.gst]
parts = [{ name = "cgst", rate = 9 }, { name = "sgst", rate = 9 }]
on = ["maintenance"]
pass_through = ["water"]
threshold_monthly = 7500
"""


def load(tmp_path, text: str):
    path = tmp_path / "billing.toml"
    path.write_text(text, encoding="utf-8")
    return load_billing(path, SITE)


def test_a_good_file_loads_into_typed_rules(tmp_path):
    config = load(tmp_path, GOOD)
    assert [h.kind for h in config.heads.values()] == [HeadKind.AREA, HeadKind.FIXED, HeadKind.NON_OCCUPANCY,
                                                       HeadKind.METERED]
    assert config.heads["maintenance"].rate_u == 3_500_000
    assert config.taxes[0].threshold_monthly_minor == 750_000
    assert config.head_of_tariff["WATER"].name == "water"
    assert config.path == str(tmp_path / "billing.toml")


def test_the_demo_society_has_a_billing_file_that_loads(tmp_path):
    society = generate_demo(tmp_path, towers=2, floors=1, flats_per_floor=2)
    site, _ = load_site_file(society.site_file)
    config = load_billing(billing_path(society.site_file), site)
    assert {"maintenance", "sinking_fund", "parking", "electricity", "water"} <= set(config.heads)
    assert config.head_of_group["lift-B"].name == "common_electricity"
    assert [p.name for p in config.taxes[0].parts] == ["cgst", "sgst"]


BAD = [
    # (replace this, with this, the key the error names, what it says)
    ("rate = 3.50", "rate = -3.50", "[heads.maintenance].rate", "must not be negative"),
    ("rate = 3.50", 'rate = "abc"', "[heads.maintenance].rate", "must be a number"),
    ("rate = 3.50", "rate = 3.1234567", "[heads.maintenance].rate", "more than 6 decimals"),
    ("rate = 3.50", "rate = true", "[heads.maintenance].rate", "must be a number"),
    ('kind = "area"', 'kind = "volume"', "[heads.maintenance].kind", "must be one of"),
    ('kind = "area"\nrate = 3.50', 'kind = "area"', "[heads.maintenance].rate", "missing key 'rate'"),
    ('of = ["maintenance"]', 'of = ["maintenanse"]', "[heads.non_occupancy].of",
     "unknown head 'maintenanse'"),
    ('of = ["maintenance"]', 'of = ["water"]', "[heads.non_occupancy].of", "not a service charge"),
    ("rate = 10\nof", "rate = 12\nof", "[heads.non_occupancy].rate", "at most 10"),
    ('on = ["maintenance"]', 'on = ["parking"]', "[taxes.gst].on", "unknown head 'parking'"),
    ('pass_through = ["water"]', 'pass_through = ["electricity"]', "[taxes.gst].pass_through",
     "unknown head 'electricity'"),
    ("rate = 21", "rate = -21", "[interest.interest].rate", "must not be negative"),
    ("rate = 21", "rate = 21\ngrace_days = -1", "[interest.interest].grace_days", "whole number"),
    ('method = "simple_daily"', 'method = "compound"', "[interest.interest].method", "must be one of"),
    ("rate = 21", 'rate = 21\ngrace_for = "some"', "[interest.interest].grace_for", "must be one of"),
    ("rate = 21", "rate = 21\nonce = true", "[interest.interest].once", "only a flat late fee"),
    ('method = "simple_daily"\nrate = 21', 'method = "flat"', "[interest.interest].amount", "missing key"),
    ("rate = 21", 'rate = 21\nhead = "water"', "[interest.interest].head", "is a charge head"),
    ("threshold_monthly = 7500", "threshold_monthly = 7500.001", "[taxes.gst].threshold_monthly",
     "below the minor unit"),
    ("threshold_monthly = 7500", 'threshold_monthly = 7500\ntaxed = "half"', "[taxes.gst].taxed",
     "must be one of"),
    ('{ name = "sgst", rate = 9 }', '{ name = "cgst", rate = 9 }', "[taxes.gst]", "already made"),
    ("rate = 300", "rate = 300\nrated = 1", "[heads.repair_fund]", "unknown key(s) ['rated']"),
    ('tariffs = ["WATER"]', 'tariffs = ["WATER"]\n[billing]\nprepaid_tariffs = ["WATER"]',
     "[heads.water].tariffs", "prepaid or postpaid, never both"),
    ('tariffs = ["WATER"]', 'tariffs = ["WATER"]\n[heads.water2]\nkind = "metered"\ntariffs = ["WATER"]',
     "[heads.water2].tariffs", "already billed by"),
    ("[heads.non_occupancy]", "[heads.non_occupancy]\nkind = 5", "billing.toml", "not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "key", "says"), BAD)
def test_a_bad_value_is_an_error_naming_the_file_and_key(tmp_path, old, new, key, says):
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, GOOD.replace(old, new, 1))
    assert says in caught.value.message
    assert isinstance(caught.value, RatingError)
    where = caught.value.where or ""
    assert where.startswith(str(tmp_path / "billing.toml")) and key in where, where


def test_a_non_occupancy_head_must_follow_the_heads_it_is_a_percentage_of(tmp_path):
    text = GOOD.replace("[heads.maintenance]\nkind = \"area\"\nrate = 3.50\n", "") + \
        '[heads.maintenance]\nkind = "area"\nrate = 3.50\n'
    with pytest.raises(ConfigError, match="must come before"):
        load(tmp_path, text)


def test_a_missing_or_non_utf8_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read billing file"):
        load_billing(tmp_path / "billing.toml", SITE)
    (tmp_path / "billing.toml").write_bytes(b"[heads.m]\nkind = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_billing(tmp_path / "billing.toml", SITE)
