"""Dues ledger backends for the billing tests: SQLite (a file) and PostgreSQL
(a throwaway server, tests/servers.py). A test module loads the fixture with

    pytest_plugins = ["tests.prepaid_backends", "tests.billing_ledgers"]
"""

from __future__ import annotations

import itertools

import pytest

from rating.billing.ledger_postgres import PostgresDuesLedger
from rating.billing.ledger_sqlite import SqliteDuesLedger
from tests.servers import NEEDS_SERVERS

_schemas = itertools.count()
LEDGERS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=NEEDS_SERVERS)]


@pytest.fixture(params=LEDGERS)
def make_ledger(request, tmp_path):
    """A function that opens a new connection to one and the same ledger."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "ledger.db"
        return lambda: SqliteDuesLedger(path)
    server = request.getfixturevalue("postgres_server")
    schema = f"dues{next(_schemas)}_{id(tmp_path)}"
    return lambda: PostgresDuesLedger(server.dsn, schema=schema)
