"""Site documents: what LoadConfig receives and the ledger keeps (rating.prepaid.sitedocs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rating.errors import ConfigError, InputError
from rating.prepaid.records import unpack_parts
from rating.prepaid.sitedocs import SiteDocs, table_from_bytes
from tests.prepaid_site import write_site


@pytest.mark.parametrize("data", [b"account_id,name\nF1,Rao", b"account_id,name\r\nF1,Rao\r\n",
                                  b"account_id,name\nF1,Rao\n"])
def test_a_csv_table_reads_with_or_without_a_last_newline(data):
    assert table_from_bytes(data, where="accounts").to_pylist() == [{"account_id": "F1", "name": "Rao"}]


def test_accounts_own_wallet_policies_come_with_the_documents_and_their_errors_name_the_row(tmp_path):
    site = write_site(tmp_path, flats=3)
    accounts = ("account_id,name,area,tariff_id,electricity.emergency_credit\n"
                "F0000,Flat 0,80,MAINT,\nF0001,Flat 1,80,MAINT,250\nF0002,Flat 2,80,MAINT,\n")
    (tmp_path / "accounts.csv").write_text(accounts)
    docs = SiteDocs.from_site_file(site)
    _, policy = SiteDocs.from_bytes(docs.to_bytes()).build()  # as the ledger keeps them
    assert policy.of("electricity", "F0001").emergency_credit_minor == 25_000
    assert policy.of("electricity", "F0000").emergency_credit_minor == 2_000  # the site's 20.00
    bad = docs.merged(accounts=accounts.replace(",250\n", ",lots\n").encode())
    with pytest.raises(ConfigError, match=r"accounts row 2 \(F0001\), electricity.emergency_credit"):
        bad.build()


HOSTILE_DOCUMENTS = [
    ({"site_toml": "site = 5\n"}, "site[site]: must be a table"),
    ({"site_toml": "[site]\ntime_zone = 5\n"}, "site[site].time_zone: must be a string"),
    ({"site_toml": '[site]\nrounding = ["half_up"]\n'}, "site[site].rounding: must be a string"),
    ({"site_toml": "[site]\nholidays = 5\n"}, "site[site].holidays: must be an array of dates"),
    ({"tariffs_toml": ('[[tariff]]\nid = 5\neffective_from = 2024-01-01\nfixed_charge = 1\n',)},
     "tariffs[0]: tariff[0] id: must be a non-empty string"),
    ({"meters": b"meter_id,account_id,tariff_id,multiplier\nE-F0000,F0000,ELEC,Infinity\n"},
     "meters row 1, column multiplier: not a number: 'Infinity'"),
    ({"meters": b"meter_id,account_id,tariff_id,interval_minutes\nE-F0000,F0000,ELEC,1e30\n"},
     "meters row 1, column interval_minutes: 1e30 is out of range"),
    ({"meters": b"meter_id,account_id,tariff_id,max_rate_per_hour\nE-F0000,F0000,ELEC,0x10\n"},
     "meters row 1, column max_rate_per_hour: not a number: '0x10'"),
    ({"meters": b"meter_id,account_id,tariff_id,\xff\nE-F0000,F0000,ELEC,1\n"},
     "meters: not UTF-8 text: byte 0xff at line 1, column 31"),
    ({"accounts": b"account_id,name,area,tariff_id\nF0000,Flat 0,Infinity,MAINT\n"},
     "accounts row 1, column area: not a number: 'Infinity'"),
    ({"accounts": b"account_id,name,area,tariff_id\nF0000,A,80,MAINT\nF0001,B,80,MAINT\nF0000,C,80,MAINT\n"},
     "accounts row 3, column account_id: duplicate account_id 'F0000' (first in row 1)"),
]


def test_hostile_documents_and_amounts_over_grpc_are_invalid_argument_and_change_nothing(tmp_path):
    import asyncio

    import grpc

    from rating.cli.commands import main
    from rating.client.calls import AsyncRatingClient, ClientError
    from rating.server import app
    from rating.v1 import rating_pb2
    from tests.prepaid_backends import Backends
    from tests.prepaid_site import AFTERNOON, Clock

    site = write_site(tmp_path / "site", flats=2)
    backends = Backends("embedded", tmp_path)

    async def go():
        settings = backends.settings(site=str(site))
        running = await app.start(settings, app.make_service(settings, clock=Clock(AFTERNOON)))
        target = f"127.0.0.1:{running.port}"
        failures, version = [], running.service.config_version
        async with AsyncRatingClient(target) as client:
            for fields, _ in HOSTILE_DOCUMENTS:
                try:
                    await client.prepaid.LoadConfig(rating_pb2.LoadConfigRequest(**fields))
                    failures.append(None)
                except grpc.RpcError as error:
                    failures.append((error.code(), error.details()))
            for amount in (2**63 - 1, -(2**63)):
                try:
                    await client.adjust("F0001", "electricity", amount, key=f"big-{amount}", reason="test")
                except ClientError as error:
                    failures.append((error.code, error.message))
            # The CLI's own amount parsing, against the same server (the verb is blocking).
            codes = [await asyncio.to_thread(main, ["topup", "F0001", "electricity", amount, "--key",
                                                    f"K{amount}", "--server", target])
                     for amount in ("1e30", "sNaN", "Infinity", "0.001")]
            balance = await client.balance("F0001")
        still = running.service.config_version
        await running.stop(1)
        return failures, version, still, codes, balance

    failures, version, still, codes, balance = asyncio.run(go())
    for (_, where), failure in zip(HOSTILE_DOCUMENTS, failures[:len(HOSTILE_DOCUMENTS)], strict=True):
        assert failure is not None and failure[0] == grpc.StatusCode.INVALID_ARGUMENT, (where, failure)
        assert where in failure[1], failure
    assert [f[0] for f in failures[len(HOSTILE_DOCUMENTS):]] == [grpc.StatusCode.INVALID_ARGUMENT] * 2
    assert still == version  # no document was stored
    assert codes == [2, 2, 2, 2]
    assert all(w.balance_minor == 0 for w in balance.wallets)


GROUPS_CSV = ('group_id,account_id,method,basis,common_meters\n'
              'lift,F0000,equal,cost,E-F0001\nlift,F0001,,,\nhall,F0000,equal,quantity,W-F0001\n')


def with_groups(site: Path) -> SiteDocs:
    """The site's documents with two shared-area groups, as `rating serve` reads them."""
    (site.parent / "groups.csv").write_text(GROUPS_CSV, encoding="utf-8")
    text = site.read_text(encoding="utf-8")
    site.write_text(text.replace("[files]", '[files]\ngroups = "groups.csv"'), encoding="utf-8")
    return SiteDocs.from_site_file(site)


def test_a_prepaid_site_whose_groups_no_postpaid_head_splits_is_refused_naming_the_group(tmp_path):
    docs = with_groups(write_site(tmp_path, flats=2))
    for billed, unbilled in (((), "lift"), ({"lift"}, "hall")):  # no share head; one for the lift only
        with pytest.raises(ConfigError, match=f"group '{unbilled}' has no postpaid head: .*never by prepaid "
                                              "debits") as err:
            docs.build(postpaid_groups=billed)
        assert err.value.where == "site[files].groups"
    config, _ = docs.build(postpaid_groups={"lift", "hall"})  # the bill splits both: served
    assert [g.group_id for g in config.groups] == ["lift", "hall"]


def test_the_groups_table_travels_with_the_documents_and_a_site_without_keeps_its_bytes(tmp_path):
    plain = SiteDocs.from_site_file(write_site(tmp_path / "plain", flats=2))
    assert plain.groups is None and len(unpack_parts(plain.to_bytes())) == 3  # as stored before groups
    docs = with_groups(write_site(tmp_path / "grouped", flats=2))
    kept = SiteDocs.from_bytes(docs.to_bytes())  # as the ledger keeps them, and the planner child gets them
    assert kept.groups is not None and kept.groups.equals(docs.groups)
    config, _ = kept.build(postpaid_groups={"lift", "hall"})
    assert config.groups["lift"].common_meters == ("E-F0001",)
    moved = docs.merged(groups=GROUPS_CSV.replace("E-F0001", "E-F0000").encode())  # LoadConfig groups
    assert moved.build(postpaid_groups={"lift", "hall"})[0].groups["lift"].common_meters == ("E-F0000",)


def test_a_site_naming_groups_without_a_groups_table_is_refused(tmp_path):
    docs = SiteDocs.from_site_file(write_site(tmp_path, flats=2))
    named = docs.merged(site_toml=docs.site_toml.replace("[files]", '[files]\ngroups = "groups.csv"'))
    with pytest.raises(ConfigError, match="no groups table came with the site") as err:
        named.build(postpaid_groups={"lift"})
    assert err.value.where == "site[files].groups"
    bad = with_groups(write_site(tmp_path / "bad", flats=2)).merged(
        groups=b"group_id,account_id,colour\nx,F0,red\n")
    with pytest.raises(InputError, match=r"groups: unknown column\(s\) \['colour'\]"):
        bad.build(postpaid_groups={"x"})
    docs.build()  # the same site without groups loads
