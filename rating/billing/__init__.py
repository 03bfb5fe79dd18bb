"""Postpaid billing: a bill for every unit each cycle, on the dues ledger.

The stage after pricing and apportionment. The bill's rules, pure and in
integer minor units: `config` reads `billing.toml` into the typed rules of
`rules`; `compute.draft_bill` turns a unit's charge heads (`heads`), rated
usage, open dues (`interest`) and taxes (`taxes`) into bill lines, held
equal to the Decimal `reference`; `cycles` says which accounts a run
covers. `ledger` keeps the append-only dues entries, numbering and audit;
`run` drafts and issues a cycle. `documents` holds the shapes they share.
"""
