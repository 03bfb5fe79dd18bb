"""Bills, notes and statements people can read: HTML from Jinja2 templates a
site can override, PDF from a layout drawn with reportlab, both from one view.

Entry points (what the CLI and the gRPC service call):

- `bill_view(document_or_draft, settings, usage=None, carried=())` the view
  of an issued bill or note (`rating.billing.ledger.Document`) or of a draft
  (`DraftBill`, numbered DRAFT);
- `bill_html(view, templates=None)` -> str and `bill_pdf(view)` -> bytes;
- `settings_of(society)` the `[document]` settings of a site
  (rating.billing.inputs.SiteBilling).

Statements (rating.billing.statements.statement) render the same way:
`statement_view(statement, settings, name="")`, `statement_html(view,
templates=None)`, `statement_pdf(view)`; `statement_bytes(...)` is the file
of a statement in any of its formats (pdf, html, csv, arrow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rating.billing.documents import DraftBill
from rating.billing.ledger import Document
from rating.billing.render import templates as _templates
from rating.billing.render.pdf import bill_pdf
from rating.billing.render.statement import StatementView, statement_pdf, statement_view
from rating.billing.render.view import BillView, Readings, Usage, of_document, of_draft
from rating.billing.render_settings import DocumentSettings, document_settings
from rating.billing.statements import Statement, statement_table

__all__ = ["BillView", "DocumentSettings", "Readings", "StatementView", "Usage", "bill_html", "bill_pdf",
           "bill_view", "document_settings", "settings_of", "statement_bytes", "statement_html",
           "statement_pdf", "statement_view"]
STATEMENT_FORMATS = ("pdf", "html", "csv", "arrow")


def bill_view(source: Document | DraftBill, settings: DocumentSettings, usage: Usage | None = None,
              carried: Sequence[str] = ()) -> BillView:
    """The readable view of an issued document or a draft."""
    if isinstance(source, DraftBill):
        return of_draft(source, settings, usage)
    return of_document(source, settings, usage, carried)


def bill_html(view: BillView, templates: Path | None = None) -> str:
    """The bill as HTML, from `templates/bill.html` of the site folder `templates` or the package's."""
    return _templates.render(templates, "bill.html", bill=view)


def statement_html(view: StatementView, templates: Path | None = None) -> str:
    """The statement as HTML, from `templates/statement.html` (the site's or the package's)."""
    return _templates.render(templates, "statement.html", statement=view)


def settings_of(society) -> DocumentSettings:
    """The document settings of a loaded site (`SiteBilling.document`)."""
    return society.document


def statement_bytes(found: Statement, fmt: str, settings: DocumentSettings, templates: Path | None = None,
                    name: str = "") -> bytes:
    """The statement as a file of `fmt` (one of STATEMENT_FORMATS): the
    rendered view (pdf, html, addressed to `name`) or its table (csv, Arrow IPC)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    if fmt in ("csv", "arrow"):
        table, sink = statement_table(found), io.BytesIO()
        if fmt == "csv":
            pacsv.write_csv(table, sink)
        else:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        return sink.getvalue()
    view = statement_view(found, settings, name)
    if fmt == "pdf":
        return statement_pdf(view)
    return statement_html(view, templates).encode()
