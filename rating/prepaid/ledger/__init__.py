"""The prepaid ledger: the interface and one module per backend (SQLite, PostgreSQL)."""
