"""rating pay, rating refund and rating bank on the demo society's SQLite ledger,
in process through rating.cli.commands.main."""

from __future__ import annotations

import pytest

from rating.cli.commands import main
from rating.cli.demo import generate_demo

PAYMENTS_TOML = """
[cheque]
bounce_charge = "250.00"

[refunds]
deadline_days = 60
approvers = ["treasurer"]

[bank.csv]
account = "IN55HDFC0000123"
currency = "INR"
date = "Date"
amount = "Amount"
balance = "Balance"
reference = "Ref"
narration = "Narration"
date_format = "%Y-%m-%d"
"""


@pytest.fixture
def society(tmp_path, capsys):
    site_file = generate_demo(tmp_path / "society", towers=1, seed=5).site_file
    (site_file.parent / "payments.toml").write_text(PAYMENTS_TOML)
    ledger = ["--site", site_file, "--ledger", tmp_path / "ledger.db", "--actor", "cashier"]
    code, _, err = cli(capsys, "bills", "issue", "--cycle", "2025-05", *ledger)
    assert code == 0, err
    return site_file, ledger


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def account(capsys, ledger) -> str:
    from rating.billing.inputs import load_site_billing

    return sorted(u.account_id for u in load_site_billing(ledger[1]).units())[0]


def test_pay_records_a_receipt_once_and_explains_its_allocation(society, capsys):
    _, ledger = society
    unit = account(capsys, ledger)
    args = ("pay", "--account", unit, "--amount", "100.00", "--method", "cash", "--on", "2025-06-10", *ledger)
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    assert out.startswith(f"receipt R/25-26/000001: 100.00 from {unit}") and "  paid" in out
    code, again, _ = cli(capsys, *args)
    assert code == 0 and "recorded before: the first receipt" in again
    code, shown, _ = cli(capsys, "pay", "show", "--account", unit, *ledger)
    assert code == 0 and "R/25-26/000001" in shown and "1 receipts" in shown


def test_a_receipt_is_written_as_html_and_pdf_with_what_it_settled(society, capsys, tmp_path):
    _, ledger = society
    unit = account(capsys, ledger)
    code, out, err = cli(capsys, "pay", "--account", unit, "--amount", "100.00", "--method", "transfer",
                         "--reference", "UTR42", "--on", "2025-06-10", *ledger)
    assert code == 0, err
    paid = [line.split() for line in out.splitlines() if line.startswith("  paid")]
    for suffix in ("html", "pdf"):
        code, out, err = cli(capsys, "pay", "receipt", "R/25-26/000001", "--out", tmp_path / f"r.{suffix}",
                             *ledger)
        assert code == 0 and "written to" in out, err
    html = (tmp_path / "r.html").read_text()
    assert "Receipt R/25-26/000001" in html and "Bank transfer · UTR42" in html
    assert all(words[-2] in html and words[-1] in html for words in paid)  # each bill and head it settled
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    code, _, err = cli(capsys, "pay", "receipt", "R/25-26/000099", "--out", tmp_path / "x.pdf", *ledger)
    assert code == 2 and "no receipt" in err


def test_pay_refuses_an_unknown_unit_and_bad_money_without_a_traceback(society, capsys):
    _, ledger = society
    for extra, words in ((["--account", "NOBODY", "--amount", "10"], "has no dues or bills"),
                         (["--account", "X", "--amount", "10.001"], "below the minor unit"),
                         (["--account", "X", "--amount", "ten"], "--amount")):
        code, out, err = cli(capsys, "pay", *extra, *ledger)
        assert code == 2 and words in err and "Traceback" not in err and out == ""


def test_a_bounced_cheque_reopens_the_dues_and_charges_the_next_bill(society, capsys):
    _, ledger = society
    unit = account(capsys, ledger)
    code, out, err = cli(capsys, "pay", "--account", unit, "--amount", "500", "--method", "cheque",
                         "--reference", "004512", "--bank", "State Bank", "--cheque-date", "2025-06-09",
                         "--on", "2025-06-10", *ledger)
    assert code == 0, err
    code, out, err = cli(capsys, "pay", "bounce", "R/25-26/000001", "--reason", "insufficient funds",
                         "--on", "2025-06-14", *ledger)
    assert code == 0, err
    assert "500.00 of dues open again; charge 250.00 on DN/25-26/00001" in out


def test_a_refund_is_asked_approved_by_another_person_and_paid(society, capsys):
    _, ledger = society
    unit = account(capsys, ledger)
    code, out, err = cli(capsys, "pay", "--account", unit, "--amount", "99999", "--on", "2025-06-10", *ledger)
    assert code == 0 and "advance" in out, err
    code, out, err = cli(capsys, "refunds", "request", "--account", unit, "--amount", "100", "--reason",
                         "paid twice", "--on", "2025-06-12", *ledger)
    assert code == 0, err
    refund = out.split()[1].rstrip(":")
    code, _, err = cli(capsys, "refunds", "approve", refund, *ledger)  # the cashier asked: not theirs
    assert code == 2 and "not an approver" in err
    treasurer = [*ledger[:-1], "treasurer"]
    code, out, err = cli(capsys, "refunds", "approve", refund, *treasurer)
    assert code == 0 and "approved" in out, err
    code, out, err = cli(capsys, "refunds", "pay", refund, "--reference", "UTR77", "--on", "2025-06-13",
                         *ledger)
    assert code == 0 and f"refund {refund}: paid" in out, err
    code, _, err = cli(capsys, "refunds", "request", "--account", unit, "--amount", "10000000", "--reason",
                       "x",
                       "--on", "2025-06-12", *ledger)
    assert code == 2 and "refundable" in err


def test_bank_import_books_an_exact_credit_sends_an_ambiguous_one_to_review_and_is_idempotent(
        society, capsys, tmp_path):
    _, ledger = society
    unit = account(capsys, ledger)
    code, out, _ = cli(capsys, "bills", "show", "--account", unit, *ledger)
    bill, amount = _bill_and_amount(out)
    rows = [("2025-06-05", f"NEFT {unit} {bill}", "UTR1", amount), ("2025-06-06", "UPI festival gift", "UTR2",
                                                                     "100.00")]
    statement = tmp_path / "june.csv"
    balance, text = 100_000_00, "Date,Narration,Ref,Amount,Balance\n"
    for day, narration, ref, value in rows:
        balance += int(value.replace(".", ""))
        text += f"{day},{narration},{ref},{value},{balance // 100}.{balance % 100:02d}\n"
    statement.write_text(text)
    code, out, err = cli(capsys, "bank", "import", statement, *ledger)
    assert code == 0, err
    assert "2 statements" not in out and "1 matched, 1 unmatched; 1 payments recorded" in out
    gift = "IN55HDFC0000123/2025-06-05..2025-06-06#2"
    assert f"unmatched {gift}" in out and "1 lines wait for staff" in out
    code, again, _ = cli(capsys, "bank", "import", statement, *ledger)
    assert code == 0 and "imported before; nothing changed" in again
    code, shown, _ = cli(capsys, "pay", "show", "--account", unit, *ledger)
    assert "transfer" in shown and "UTR1" in shown
    code, out, err = cli(capsys, "bank", "review", "--dismiss", gift, "--reason", "festival gift", *ledger)
    assert code == 0 and "dismissed" in out, err
    code, out, _ = cli(capsys, "bank", "review", *ledger)
    assert out.strip() == "0 lines wait for staff"
    statement.write_text(text.replace("UTR2,100.00", "UTR2,100.01"))
    code, _, err = cli(capsys, "bank", "import", statement, *ledger)
    assert code == 2 and "Balance" in err and "Traceback" not in err


def _bill_and_amount(listing: str) -> tuple[str, str]:
    for line in listing.splitlines():
        words = line.split()
        if words and words[0].startswith("B/"):
            return words[0], next(w for w in words[1:] if w.replace(".", "").replace(",", "").isdigit())
    raise AssertionError(listing)
