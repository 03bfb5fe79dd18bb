"""Site documents: what LoadConfig receives and the ledger keeps (rating.prepaid.sitedocs)."""

from __future__ import annotations

import pytest

from rating.errors import ConfigError
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
