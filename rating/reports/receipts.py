"""Receipts by channel per cycle window (rating.reports.kpis.cycles_of): how
many payments and how much came in online (gateway), in cash, by cheque and
by transfer, and how much of it was reversed (bounced, charged back) in the
window. Suspense payments (an unknown account) are not the site's receipts
until staff place them, so they are left out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from rating.reports.facts import Facts
from rating.reports.kpis import cycles_of

CHANNELS = {"gateway": "online", "cash": "cash", "cheque": "cheque", "transfer": "transfer"}
SCHEMA = pa.schema([("cycle_id", pa.string()), ("channel", pa.string()), ("receipts", pa.int64()),
                    ("amount_minor", pa.int64()), ("reversed_minor", pa.int64())])


def receipts(facts: Facts, as_of: dt.date) -> pa.Table:
    rows = []
    channel = np.array([CHANNELS.get(m, m) for m in facts.receipt_method], dtype=object)
    for cycle in cycles_of(facts.rows.bills, as_of):
        a, b = cycle.bill_date.toordinal(), cycle.window_end.toordinal()
        got = (facts.receipt_on >= a) & (facts.receipt_on <= b)
        back = (facts.receipt_back >= a) & (facts.receipt_back <= b)
        for name in dict.fromkeys(CHANNELS.values()):
            mine = channel == name
            rows.append({"cycle_id": cycle.cycle_id, "channel": name, "receipts": int((got & mine).sum()),
                         "amount_minor": int(facts.receipt_amount[got & mine].sum()),
                         "reversed_minor": int(facts.receipt_amount[back & mine].sum())})
    return pa.Table.from_pylist(rows, schema=SCHEMA)
