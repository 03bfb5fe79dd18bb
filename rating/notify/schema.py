"""The notification tables, in the dues ledger's database (SQLite file or
PostgreSQL schema): the outbox, its send log, contacts, consent, staff tags,
and the staff queue (contacts a provider refused, until staff set a new one).

The outbox row is the one mutable record (its state moves queued -> sending
-> sent | failed | cancelled); the send log beside it is append-only, one
row per attempt and per decision, so what was sent to whom stays on record.
"""

from __future__ import annotations

_TABLES = """
CREATE TABLE IF NOT EXISTS notify_outbox (
    id {serial} PRIMARY KEY,
    note_key text NOT NULL UNIQUE,
    site_id text NOT NULL,
    account_id text NOT NULL,
    cause text NOT NULL,
    ref text NOT NULL,
    step text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    template text NOT NULL,
    fields text NOT NULL,
    state text NOT NULL,
    attempts bigint NOT NULL,
    attempts_max bigint NOT NULL,
    not_before_us bigint NOT NULL,
    lease_until_us bigint NOT NULL,
    created_us bigint NOT NULL,
    updated_us bigint NOT NULL,
    provider_ref text NOT NULL,
    answer text NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_outbox_due ON notify_outbox (not_before_us, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS notify_outbox_sending ON notify_outbox (lease_until_us) WHERE state = 'sending';
CREATE INDEX IF NOT EXISTS notify_outbox_account ON notify_outbox (site_id, account_id, updated_us);
CREATE TABLE IF NOT EXISTS notify_log (
    log_id {serial} PRIMARY KEY,
    outbox_id bigint NOT NULL,
    site_id text NOT NULL,
    account_id text NOT NULL,
    at_us bigint NOT NULL,
    attempt bigint NOT NULL,
    outcome text NOT NULL,
    detail text NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_log_account ON notify_log (site_id, account_id, log_id);
CREATE TABLE IF NOT EXISTS notify_contacts (
    site_id text NOT NULL,
    account_id text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    name text NOT NULL,
    language text NOT NULL,
    time_zone text NOT NULL,
    invalid text NOT NULL,
    updated_us bigint NOT NULL,
    PRIMARY KEY (site_id, account_id, channel)
);
CREATE TABLE IF NOT EXISTS notify_consent (
    site_id text NOT NULL,
    account_id text NOT NULL,
    channel text NOT NULL,
    state text NOT NULL,
    source text NOT NULL,
    at_us bigint NOT NULL,
    PRIMARY KEY (site_id, account_id, channel)
);
CREATE TABLE IF NOT EXISTS notify_staff (
    id {serial} PRIMARY KEY,
    site_id text NOT NULL,
    account_id text NOT NULL,
    channel text NOT NULL,
    address text NOT NULL,
    reason text NOT NULL,
    at_us bigint NOT NULL,
    resolved_us bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_staff_open ON notify_staff (site_id, id) WHERE resolved_us = 0;
CREATE TABLE IF NOT EXISTS notify_tags (
    site_id text NOT NULL,
    account_id text NOT NULL,
    tag text NOT NULL,
    actor text NOT NULL,
    at_us bigint NOT NULL,
    PRIMARY KEY (site_id, account_id, tag)
);
"""
_APPEND_ONLY_SQLITE = ("CREATE TRIGGER IF NOT EXISTS notify_log_no_{verb} BEFORE {verb} ON notify_log "
                       "BEGIN SELECT RAISE(ABORT, 'notify_log is append-only'); END")
_APPEND_ONLY_POSTGRES = ("CREATE OR REPLACE TRIGGER notify_log_append_only BEFORE UPDATE OR DELETE "
                         "ON notify_log FOR EACH STATEMENT EXECUTE FUNCTION dues_append_only()")


def statements(postgres: bool) -> list[str]:
    """The DDL, one statement each, for the backend."""
    tables = _TABLES.format(serial="bigserial" if postgres else "INTEGER")
    found = [s.strip() for s in tables.split(";") if s.strip()]
    if postgres:
        return [*found, _APPEND_ONLY_POSTGRES]
    return [*found, *(_APPEND_ONLY_SQLITE.format(verb=v) for v in ("UPDATE", "DELETE"))]
