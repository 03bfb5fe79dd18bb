"""The payments tables of the dues ledger, one definition for both backends.

`tables(types)` gives the CREATE statements with each backend's column types
(SQLite: TEXT dates, INTEGER flags; PostgreSQL: date, boolean, bigint). Every
table is append-only (the backends add their triggers): a payment's state is
the rows written about it, never an updated one.
"""

from __future__ import annotations

APPEND_ONLY = ("dues_payments", "dues_allocations", "dues_credits", "dues_reversals", "dues_claims",
               "dues_refunds", "dues_statements", "dues_bank_lines")
SQLITE_TYPES = {"text": "TEXT", "int": "INTEGER", "date": "TEXT", "flag": "INTEGER"}
POSTGRES_TYPES = {"text": "text", "int": "bigint", "date": "date", "flag": "boolean"}

_TABLES = """
CREATE INDEX IF NOT EXISTS dues_documents_corrects ON dues_documents (site_id, corrects);
CREATE TABLE IF NOT EXISTS dues_payments (
    site_id {text} NOT NULL, receipt {text} NOT NULL, fy {text} NOT NULL, serial {int} NOT NULL,
    account_id {text} NOT NULL, method {text} NOT NULL, amount_minor {int} NOT NULL,
    received_on {date} NOT NULL, reference {text} NOT NULL, details {text} NOT NULL, tag {text} NOT NULL,
    suspense {flag} NOT NULL, seq {int} NOT NULL, actor {text} NOT NULL,
    PRIMARY KEY (site_id, receipt)
);
CREATE INDEX IF NOT EXISTS dues_payments_account ON dues_payments (site_id, account_id);
CREATE TABLE IF NOT EXISTS dues_allocations (
    seq {int} NOT NULL, site_id {text} NOT NULL, account_id {text} NOT NULL, receipt {text} NOT NULL,
    credit_ref {text} NOT NULL, bill_ref {text} NOT NULL, head {text} NOT NULL, kind {text} NOT NULL,
    due_date {date} NOT NULL, amount_minor {int} NOT NULL, on_date {date} NOT NULL
);
CREATE INDEX IF NOT EXISTS dues_allocations_account ON dues_allocations (site_id, account_id);
CREATE INDEX IF NOT EXISTS dues_allocations_receipt ON dues_allocations (site_id, receipt);
CREATE TABLE IF NOT EXISTS dues_credits (
    seq {int} NOT NULL, site_id {text} NOT NULL, account_id {text} NOT NULL, receipt {text} NOT NULL,
    tag {text} NOT NULL, amount_minor {int} NOT NULL, on_date {date} NOT NULL, why {text} NOT NULL
);
CREATE INDEX IF NOT EXISTS dues_credits_account ON dues_credits (site_id, account_id, receipt);
CREATE TABLE IF NOT EXISTS dues_reversals (
    site_id {text} NOT NULL, receipt {text} NOT NULL, kind {text} NOT NULL, on_date {date} NOT NULL,
    reason {text} NOT NULL, seq {int} NOT NULL, actor {text} NOT NULL,
    PRIMARY KEY (site_id, receipt)
);
CREATE TABLE IF NOT EXISTS dues_claims (
    site_id {text} NOT NULL, claim_id {text} NOT NULL, event {text} NOT NULL, account_id {text} NOT NULL,
    amount_minor {int} NOT NULL, paid_on {date} NOT NULL, method {text} NOT NULL, reference {text} NOT NULL,
    note {text} NOT NULL, receipt {text} NOT NULL, seq {int} NOT NULL, actor {text} NOT NULL,
    PRIMARY KEY (site_id, claim_id, event)
);
CREATE TABLE IF NOT EXISTS dues_refunds (
    site_id {text} NOT NULL, refund_id {text} NOT NULL, event {text} NOT NULL, account_id {text} NOT NULL,
    amount_minor {int} NOT NULL, source {text} NOT NULL, head {text} NOT NULL, reason {text} NOT NULL,
    method {text} NOT NULL, reference {text} NOT NULL, on_date {date} NOT NULL, terms {text} NOT NULL,
    seq {int} NOT NULL, actor {text} NOT NULL,
    PRIMARY KEY (site_id, refund_id, event)
);
CREATE TABLE IF NOT EXISTS dues_statements (
    site_id {text} NOT NULL, account {text} NOT NULL, statement_id {text} NOT NULL, sequence {text} NOT NULL,
    digest {text} NOT NULL, source {text} NOT NULL, sequence_key {text} NOT NULL,
    opening_minor {int} NOT NULL, closing_minor {int} NOT NULL, first_date {text} NOT NULL,
    last_date {text} NOT NULL, seq {int} NOT NULL,
    PRIMARY KEY (site_id, account, statement_id, sequence)
);
CREATE TABLE IF NOT EXISTS dues_bank_lines (
    site_id {text} NOT NULL, line_id {text} NOT NULL, event {int} NOT NULL, booking_date {date} NOT NULL,
    amount_minor {int} NOT NULL, reference {text} NOT NULL, text {text} NOT NULL, status {text} NOT NULL,
    reason {text} NOT NULL, candidates {text} NOT NULL, receipt {text} NOT NULL, seq {int} NOT NULL,
    actor {text} NOT NULL,
    PRIMARY KEY (site_id, line_id, event)
);
"""


def tables(types: dict[str, str]) -> str:
    return _TABLES.format(**types)
