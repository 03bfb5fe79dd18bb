"""`rating pay`, `rating refunds`, `rating claims` and `rating bank` through a
running server (--server, with tokens of their roles), printing what the
local verbs print; the local verbs refuse the ledger the server holds;
residents' claims are listed, confirmed and rejected from the command line."""

from __future__ import annotations

import datetime as dt

import pytest

from rating.cli.commands import main
from rating.client.billing import BillingClient
from rating.client.payments import PaymentsClient
from tests.billing_server import SITE_NAME, serving, settings, write_society
from tests.test_payments_cli import PAYMENTS_TOML

TOKENS = {"staff": f'tok-staff role=staff site="{SITE_NAME}" name=office',
          "meena": f'tok-meena role=approver site="{SITE_NAME}" name=meena',
          "ravi": f'tok-ravi role=approver site="{SITE_NAME}" name=ravi',
          "resident": f'tok-resident role=resident site="{SITE_NAME}" unit=A-0101'}


@pytest.fixture
def society(tmp_path):
    site = write_society(tmp_path / "society")
    (site.parent / "payments.toml").write_text(PAYMENTS_TOML, encoding="utf-8")
    (tmp_path / "tokens").write_text("\n".join(TOKENS.values()) + "\n", encoding="utf-8")
    for name, entry in TOKENS.items():
        (tmp_path / f"{name}.token").write_text(entry.split()[0], encoding="utf-8")
    return site, tmp_path


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_pay_through_the_server_prints_what_the_local_verb_prints(society, capsys):
    site, folder = society
    data = folder / "data"
    local = ["--site", site, "--ledger", data / "ledger.db", "--actor", "cashier"]
    with serving(settings(site, data, token_file=str(folder / "tokens"))) as served:
        with BillingClient(served.target, token="tok-staff") as staff:
            staff.issue("2025-05")
        remote = ["--server", served.target, "--token-file", folder / "staff.token", "--actor", "cashier"]
        pay = ["pay", "--account", "A-0102", "--amount", "1500.00", "--method", "cheque", "--reference",
               "004512", "--bank", "State Bank", "--cheque-date", "2025-06-09", "--on", "2025-06-10"]
        first = cli(capsys, *pay, *remote)
        again = cli(capsys, *pay, *remote)
        sub_paisa = cli(capsys, "pay", "--account", "A-0102", "--amount", "12.345", *remote)
        refused = cli(capsys, *pay, *local)
        by_resident = cli(capsys, *pay, "--server", served.target, "--token-file", folder / "resident.token")
        counts = served.counts()
        receipt = first[1].split()[1].rstrip(":")
        bounce = cli(capsys, "pay", "bounce", receipt, "--reason", "insufficient funds", "--on", "2025-06-16",
                     *remote)
        shown = cli(capsys, "pay", "show", "--account", "A-0102", *remote)
        no_pdf = cli(capsys, "pay", "receipt", receipt, "--out", folder / "r.pdf", *remote)
    shown_locally = cli(capsys, "pay", "show", "--account", "A-0102", *local)
    assert first[0] == 0 and first[1].startswith("receipt R/25-26/000001: 1500.00 from A-0102"), first
    assert again[0] == 0 and "(recorded before: the first receipt)" in again[1]
    assert sub_paisa[0] == 2
    assert "--amount: 12.345 has more decimals than the currency's minor unit" in sub_paisa[2]
    assert refused[0] == 3 and "is held by a running server" in refused[2] and "--server" in refused[2]
    assert by_resident[0] != 0 and "PERMISSION_DENIED" in by_resident[2] + by_resident[1]
    assert counts["dues_payments"] == 1
    assert bounce[0] == 0 and "1500.00 of dues open again; charge 250.00 on DN/25-26/00001" in bounce[1]
    assert shown[0] == 0 and shown[1] == shown_locally[1] and "undone" in shown[1]
    assert no_pdf[0] == 2 and "without --server" in no_pdf[2]


def test_refunds_claims_and_the_bank_through_the_server(society, capsys):
    site, folder = society
    with serving(settings(site, folder / "data", token_file=str(folder / "tokens"))) as served:
        with BillingClient(served.target, token="tok-staff") as staff:
            staff.issue("2025-05")
            owed = {b.account_id: b for b in staff.bills(cycle="2025-05")}
        as_ = {name: ["--server", served.target, "--token-file", folder / f"{name}.token"] for name in TOKENS}
        due = owed["A-0103"].total_due_minor
        over = f"{(due + 30000) // 100}.{(due + 30000) % 100:02d}"
        overpaid = cli(capsys, "pay", "--account", "A-0103", "--amount", over, "--on", "2025-06-10",
                       *as_["staff"])
        assert overpaid[0] == 0, overpaid
        asked = cli(capsys, "refunds", "request", "--account", "A-0103", "--amount", "200.00", "--reason",
                    "paid twice", "--on", "2025-06-12", *as_["meena"])
        refund_id = asked[1].split()[1].rstrip(":")
        too_much = cli(capsys, "refunds", "request", "--account", "A-0103", "--amount", "300.01", "--reason",
                       "paid twice", "--on", "2025-06-12", *as_["meena"])
        own = cli(capsys, "refunds", "approve", refund_id, *as_["meena"])
        approved = cli(capsys, "refunds", "approve", refund_id, *as_["ravi"])
        paid = cli(capsys, "refunds", "pay", refund_id, "--reference", "UTR77", "--on", "2025-06-13",
                   *as_["staff"])
        with PaymentsClient(served.target, token="tok-resident") as resident:
            first = resident.claim("c-1", 50_000, dt.date(2025, 6, 9), "transfer", reference="UTR-C1")
            second = resident.claim("c-2", 20_000, dt.date(2025, 6, 9), "transfer", reference="UTR-C2")
        listed = cli(capsys, "claims", "list", "--status", "open", *as_["staff"])
        confirmed = cli(capsys, "claims", "confirm", first.claim_id, *as_["staff"])
        no_reason = cli(capsys, "claims", "reject", second.claim_id, *as_["staff"])
        rejected = cli(capsys, "claims", "reject", second.claim_id, "--reason", "not in the bank",
                       *as_["staff"])
        by_resident = cli(capsys, "claims", "list", *as_["resident"])
        left = cli(capsys, "claims", "list", "--status", "open", *as_["staff"])
        statement = folder / "june.csv"
        statement.write_text("Date,Narration,Ref,Amount,Balance\n"
                             "2025-06-15,UPI festival gift,UTR9,100.00,1100.00\n")
        imported = cli(capsys, "bank", "import", statement, *as_["staff"])
        again = cli(capsys, "bank", "import", statement, *as_["staff"])
        line = "IN55HDFC0000123/2025-06-15..2025-06-15#1"
        dismissed = cli(capsys, "bank", "review", "--dismiss", line, "--reason", "gift", *as_["staff"])
        review = cli(capsys, "bank", "review", *as_["staff"])
    assert asked[0] == 0 and asked[1].endswith(": requested\n"), asked
    assert too_much[0] == 2 and "refundable" in too_much[2]
    assert own[0] == 2 and "another approver decides it" in own[2]
    assert approved[1] == f"refund {refund_id}: approved\n" and paid[1] == f"refund {refund_id}: paid\n"
    assert [ln.split()[:2] for ln in listed[1].splitlines()[:-1]] == [[first.claim_id, "open"],
                                                                       [second.claim_id, "open"]]
    assert "  500.00  2025-06-09  transfer UTR-C1" in listed[1] and listed[1].endswith("2 claims\n")
    assert confirmed[0] == 0 and confirmed[1].startswith("receipt R/25-26/") and "from A-0101" in confirmed[1]
    assert no_reason[0] == 2 and "--reason" in no_reason[2]
    assert rejected[1] == f"claim {second.claim_id}: rejected (not in the bank)\n"
    assert by_resident[0] != 0
    assert left[1] == "0 claims\n"
    assert imported[0] == 0 and "1 statements, lines: 1 unmatched; 0 payments recorded" in imported[1]
    assert f"unmatched {line}" in imported[1] and imported[1].endswith("1 lines wait for staff\n")
    assert "imported before; nothing changed" in again[1]
    assert dismissed[1] == f"{line}: dismissed (gift)\n" and review[1] == "0 lines wait for staff\n"


def test_staff_assign_a_suspense_payment_and_allocate_held_money_locally_or_through_the_server(
        society, capsys):
    from rating.payments.gateway import GatewayEvent, apply_gateway_payment

    site, folder = society
    data = folder / "data"
    local = ["--site", site, "--ledger", data / "ledger.db", "--actor", "cashier"]
    on = dt.date(2025, 6, 12)
    with serving(settings(site, data, token_file=str(folder / "tokens"))) as served:
        with BillingClient(served.target, token="tok-staff") as staff:
            staff.issue("2025-05")
            owed = {b.account_id: b for b in staff.bills(cycle="2025-05")}

        def gateway(payment_id, account, amount, bill=""):
            event = GatewayEvent("razorpay", payment_id, "captured", SITE_NAME, account, amount, on,
                                 bill=bill)
            return served.run(apply_gateway_payment(served.running.dues, event, actor="webhook"))

        lost = gateway("pay_lost", "Z-999", owed["A-0104"].total_due_minor)
        held = gateway("pay_held", "A-0103", 1_000, bill=owed["A-0103"].number)
        remote = ["--server", served.target, "--token-file", folder / "staff.token", "--on", "2025-06-12"]
        assigned = cli(capsys, "pay", "assign", lost.receipt, "--account", "A-0104", *remote)
        again = cli(capsys, "pay", "assign", lost.receipt, "--account", "A-0104", *remote)
        no_account = cli(capsys, "pay", "assign", lost.receipt, *remote)
        allocated = cli(capsys, "pay", "allocate", "--account", "A-0103", *remote)
    ordinary = cli(capsys, "pay", "assign", held.receipt, "--account", "A-0103", *local)
    nothing_left = cli(capsys, "pay", "allocate", "--on", "2025-06-13", *local)
    assert assigned[0] == 0 and assigned[1].startswith("receipt R/25-26/000003: ")
    assert "from A-0104" in assigned[1]
    assert "paid" in assigned[1] and owed["A-0104"].number in assigned[1]
    assert "(recorded before: the first receipt)" in again[1]
    assert no_account[0] == 2 and "--account" in no_account[2]
    assert allocated[0] == 0 and f"A-0103     {held.receipt}  paid" in allocated[1]
    assert allocated[1].endswith("10.00 of 1 accounts' unallocated money allocated\n")
    assert ordinary[0] == 2 and "not one in suspense" in ordinary[2]
    assert nothing_left == (0, "0.00 of 0 accounts' unallocated money allocated\n", "")
