"""Rendered bills: HTML from the templates (a site's own too), PDF read back
with real extractors (pdftotext for shaped Devanagari, pypdf), usage detail
from the demo society's readings, and what is refused."""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from pathlib import Path

import pypdf
import pytest

from rating.billing import render
from rating.billing.documents import BillLine, DraftBill, LineKind
from rating.billing.render.templates import TemplateError
from rating.billing.render_settings import document_settings
from rating.cli.commands import main
from rating.cli.demo import generate_demo
from rating.errors import ConfigError, InputError
from tests.billing_drafts import MAY

NAMES = ("राजेश कुमार शर्मा", "王小明", "Anne-Marie D'Souza")
SETTINGS = document_settings({"name": "हरित कुंज सहकारी गृहनिर्माण संस्था", "address": ["बाणेर रोड, पुणे 411045"],
                              "payment_note": "UPI greenmeadows@examplebank"},
                             site_name="x", currency="INR", exponent=2, where="billing.toml[document]")
GST = (("rule", "gst"), ("base", "9000.00"), ("rate", "9 %"), ("gstin", "27AAAAG1234A1Z5"),
       ("sac", "999598"), ("place_of_supply", "27-Maharashtra"))


def pdftotext(data: bytes) -> str:
    """The text of a PDF as poppler extracts it (it reads ActualText, as copy and paste does)."""
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is needed: ./dev test installs it"
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True)
    return done.stdout.decode()


def a_draft(name: str, *, maintenance: int = 10_000_000) -> DraftBill:
    lines = (BillLine("maintenance", LineKind.CHARGE, maintenance, "Maintenance charges",
                      (("area", "83.6 m²"), ("rate", "38.00 per m² a month"))),
             BillLine("interest", LineKind.INTEREST, 12_345, "Interest on bill B/25-26/000001",
                      (("days", "16"), ("rate", "21 % a year, actual/365"))),
             BillLine("cgst", LineKind.TAX, 810_000, "CGST 9 %", GST),
             BillLine("maintenance", LineKind.ARREARS, 250_000, "Arrears: maintenance"))
    return DraftBill(MAY, "A-0101", name, lines)


@pytest.mark.parametrize("name", NAMES)
def test_pdf_gives_back_names_in_devanagari_and_chinese_and_the_amounts_in_indian_grouping(name):
    view = render.bill_view(a_draft(name), SETTINGS)
    data = render.bill_pdf(view)
    text = pdftotext(data)
    assert name in text and SETTINGS.name in text and "बाणेर रोड, पुणे 411045" in text
    assert "₹1,00,000.00" in text and "₹1,08,223.45" in text and "₹1,10,723.45" in text
    page = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "₹1,10,723.45" in page and "DRAFT" in page and "Tax invoice" in page


def test_tax_invoice_shows_gstin_sac_and_place_of_supply_and_interest_its_days_and_rate():
    view = render.bill_view(a_draft(NAMES[0]), SETTINGS)
    assert view.invoice == (("GSTIN", "27AAAAG1234A1Z5"), ("SAC code", "999598"),
                            ("Place of supply", "27-Maharashtra"))
    html = render.bill_html(view)
    for shown in ("GSTIN: 27AAAAG1234A1Z5", "SAC code: 999598", "Place of supply: 27-Maharashtra",
                  "days 16", "rate 21 % a year, actual/365", "area 83.6 m²", NAMES[0], "DRAFT"):
        assert shown in html
    assert "<script>" not in render.bill_html(render.bill_view(a_draft("<script>x</script>"), SETTINGS))


def test_a_bill_without_tax_is_a_bill_not_a_tax_invoice_and_the_draft_reference_is_draft():
    draft = a_draft("Meena")
    untaxed = tuple(line for line in draft.lines if line.kind is not LineKind.TAX)
    plain = dataclasses.replace(draft, lines=untaxed)
    view = render.bill_view(plain, SETTINGS)
    assert view.title == "Bill" and view.invoice == () and view.payment_reference == "DRAFT"


@pytest.fixture(scope="module")
def society(tmp_path_factory):
    """The demo society (one tower), May issued on SQLite, with its usage detail."""
    from rating.billing.inputs import load_site_billing, run_cycle
    from rating.billing.ledger_sqlite import SqliteDuesLedger
    from rating.billing.render.usage_detail import usage_detail
    from rating.billing.run import RunInputs, issue_cycle
    from rating.engine import rate
    from tests.billing_drafts import run

    demo = generate_demo(tmp_path_factory.mktemp("society"), towers=1, seed=5)
    site = load_site_billing(demo.site_file)
    cycle = run_cycle(site.site_id, "2025-05", site.billing)
    result = rate(str(demo.readings_file), config=site.config, unknown_meters="report")
    detail = usage_detail(result.charges, [str(demo.readings_file)], site.config, cycle.period_start,
                          cycle.period_end)
    ledger = demo.folder / "ledger.db"
    inputs = RunInputs(cycle, site.billing, site.numbering, site.units(),
                       {a: u.lines for a, u in detail.items()}, rules_text=site.rules_text)
    run(lambda: SqliteDuesLedger(ledger), lambda led: issue_cycle(led, inputs, actor="tester"))
    documents = run(lambda: SqliteDuesLedger(ledger), lambda led: led.documents(site.site_id))
    return demo, site, detail, ledger, documents


def test_issued_bill_shows_each_meter_with_readings_multiplier_and_slabs_and_the_share_basis(society):
    demo, site, detail, _, documents = society
    bill = next(d for d in documents if d.account_id == "A-0102")
    view = render.bill_view(bill, site.document, detail["A-0102"])
    electricity = next(m for m in view.meters if m.meter_id.startswith("E-"))
    readings = detail["A-0102"].readings[electricity.meter_id]
    assert readings.last > readings.first and electricity.multiplier == 1
    assert len(electricity.slabs) > 1 and any(("slab", "2") in row.basis for row in electricity.slabs)
    lift = next(s for s in view.shares if s.group_id.startswith("lift"))
    assert lift.method == "area" and lift.weight and lift.weight_total
    text = pdftotext(render.bill_pdf(view))
    assert bill.number in text and f"readings {readings.first} → {readings.last}" in text
    assert f"your share {lift.weight} of {lift.weight_total}" in text
    assert view.payment_reference == f"A-0102/{bill.number}" and view.payment_reference in text
    assert view.total_due_minor == bill.body["total_due_minor"]


def test_usage_that_does_not_add_up_to_the_issued_bill_is_refused(society):
    _, site, detail, _, documents = society
    bill = next(d for d in documents if d.account_id == "A-0102")
    with pytest.raises(InputError, match="not the readings the bill was computed from") as caught:
        render.bill_view(bill, site.document, detail["A-0103"])
    assert caught.value.reason == "USAGE_MISMATCH"


def test_a_site_template_overrides_the_package_one_and_its_errors_name_file_and_line(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    view = render.bill_view(a_draft("Meena"), SETTINGS)
    (folder / "bill.html").write_text("<p>{{ bill.number }} for {{ bill.bill_to }}</p>\n", encoding="utf-8")
    assert render.bill_html(view, folder) == "<p>DRAFT for Meena</p>"
    broken = tmp_path / "broken" / "templates"
    broken.mkdir(parents=True)
    (broken / "bill.html").write_text("<p>\n{% if bill.draft %}\n</p>\n", encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        render.bill_html(view, broken)
    assert caught.value.where.endswith("bill.html:3") or caught.value.where.endswith("bill.html:4")
    unknown = tmp_path / "unknown" / "templates"
    unknown.mkdir(parents=True)
    (unknown / "bill.html").write_text("<p>\n{{ bill.number }}\n{{ bill.no_such_field }}\n</p>\n",
                                       encoding="utf-8")
    with pytest.raises(TemplateError, match="no_such_field") as caught:
        render.bill_html(view, unknown)
    assert caught.value.where == f"{unknown / 'bill.html'}:3"


@pytest.mark.parametrize(("table", "message"), [
    ({"locale": "xx_NOPE"}, "unknown locale"),
    ({"payment_reference": "{account_id}/{secret}"}, "unknown field"),
    ({"address": "one line"}, "array"),
    ({"colour": "red"}, "unknown key"),
])
def test_a_bad_document_table_is_refused_naming_the_key(table, message):
    with pytest.raises(ConfigError, match=message) as caught:
        document_settings(table, site_name="x", currency="INR", exponent=2, where="billing.toml[document]")
    assert caught.value.where.startswith("billing.toml[document]")


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bills_pdf_writes_a_cycle_and_one_bill_and_refuses_a_number_that_does_not_exist(society, tmp_path,
                                                                                          capsys):
    demo, _, _, ledger, documents = society
    common = ["--site", demo.site_file, "--ledger", ledger]
    code, out, _ = cli(capsys, "bills", "pdf", "--cycle", "2025-05", "--out", tmp_path / "may", *common)
    count = len(documents)
    assert code == 0 and out == f"wrote {count} documents ({count} files) to {tmp_path / 'may'}\n"
    first = tmp_path / "may" / "B-25-26-000001.pdf"
    assert documents[0].body["bill_to"] in pdftotext(first.read_bytes())
    code, _, _ = cli(capsys, "bills", "pdf", documents[1].number, "--format", "html",
                     "--out", tmp_path / "one", *common)
    assert code == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["B-25-26-000002.html"]
    code, _, err = cli(capsys, "bills", "pdf", "B/25-26/999999", "--out", tmp_path / "none", *common)
    assert code == 2 and "no bill or note 'B/25-26/999999'" in err and not (tmp_path / "none").exists()
    code, _, err = cli(capsys, "bills", "pdf", "--cycle", "2025-09", "--out", tmp_path / "sep", *common)
    assert code == 2 and "has no issued bills" in err and "Traceback" not in err


def test_a_broken_site_template_writes_nothing(society, tmp_path, capsys):
    demo, _, _, ledger, _ = society
    site = tmp_path / "site"
    shutil.copytree(demo.folder, site, ignore=shutil.ignore_patterns("ledger.db"))
    (site / "templates").mkdir()
    (site / "templates" / "bill.html").write_text("{{ bill.number }\n", encoding="utf-8")
    code, _, err = cli(capsys, "bills", "pdf", "--cycle", "2025-05", "--format", "html", "--out",
                       tmp_path / "out", "--site", site / "site.toml", "--ledger", ledger)
    assert code == 2 and f"{site / 'templates' / 'bill.html'}:1" in err and not (tmp_path / "out").exists()


def test_html_of_the_package_template_names_what_the_docs_say_a_site_may_use():
    names = sorted(p.name for p in Path(render.__file__).parent.joinpath("templates").iterdir())
    assert names == ["bill.html", "receipt.html", "statement.html"]


def test_bench_render_runs_and_reports_its_medians_beside_the_ceilings(capsys):
    from bench import bench_render

    bench_render.main(["--towers", "1", "--repeat", "1"])
    out = capsys.readouterr().out
    assert out.startswith("33 bills; medians of 1 runs") and "pdf ceiling" in out and "html / ceiling" in out
