"""Postpaid billing: a bill for every unit each cycle, on the dues ledger.

The stage after pricing and apportionment: `rules` turns a unit's charge heads,
usage and arrears into bill lines (pure, integer minor units, held equal to a
Decimal reference); `ledger` keeps the append-only dues entries, numbering and
audit; `run` drafts and issues a cycle. `documents` holds the shapes they share.
"""
