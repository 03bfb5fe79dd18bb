"""Reports over the dues ledger, the rated charges and the prepaid wallets:
defaulters with ageing, collection KPIs, receipts by channel, the cash-flow
forecast, consumption analytics, prepaid wallets and top-ups (docs/reports.md).

Each report is a function of data already read (`rating.reports.facts.load`
reads a site's dues once), returning an Arrow table in integer minor units
and Decimal ratios; `rating.reports.export` writes any of them as CSV, XLSX
or Parquet, and `rating report` (rating.cli.reports) is a thin shell over them,
as a dashboard page or an RPC can be.
"""
