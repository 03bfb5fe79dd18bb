"""Payments: bank statement import and reconciliation, webhook signatures.

    from rating.payments import read_statements, admit, reconcile, OpenItem

`read_statements(path)` reads a CAMT.053, MT940 or CSV file into checked
`Statement`s (or raises StatementError and returns nothing); `admit` tells new
statements from re-imports against a `StatementRegistry`; `reconcile` matches
their lines to open items. `WebhookVerifier` checks a gateway call's signature.
"""

from rating.payments.bank_import import FORMATS, detect_format, parse_statements, read_statements
from rating.payments.csv_statement import CsvLayout
from rating.payments.errors import SignatureError, StatementConflict, StatementError
from rating.payments.matching import Line, Match, OpenItem, Reconciliation, Review, reconcile
from rating.payments.statement import (
    Counterparty,
    Entry,
    EntryPart,
    References,
    Statement,
    StatementIdentity,
)
from rating.payments.statement_registry import (
    Admission,
    MemoryStatementRegistry,
    StatementMark,
    StatementRegistry,
    admit,
)
from rating.payments.webhook import (
    SIGNATURE_HEADER,
    EventLog,
    GatewaySecrets,
    MemoryEventLog,
    Verified,
    WebhookVerifier,
    sign,
)

__all__ = [
    "FORMATS", "SIGNATURE_HEADER", "Admission", "Counterparty", "CsvLayout", "Entry", "EntryPart",
    "EventLog", "GatewaySecrets", "Line", "Match", "MemoryEventLog", "MemoryStatementRegistry",
    "OpenItem", "Reconciliation", "References", "Review", "SignatureError", "Statement",
    "StatementConflict", "StatementError", "StatementIdentity", "StatementMark", "StatementRegistry",
    "Verified", "WebhookVerifier", "admit", "detect_format", "parse_statements", "read_statements",
    "reconcile", "sign",
]
