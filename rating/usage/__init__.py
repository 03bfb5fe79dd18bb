"""Usage that is not a meter: parking by the time a car stays, facilities paid
per use, and annual fees or fund contributions in instalments (docs/usage.md).

Each is priced exactly (integer minor units; a Decimal reference beside each
vectorised path) and moves money through the prepaid ledger's movements
(rating.prepaid) or, for instalments billed postpaid, the bill's item heads
(rating.billing).
"""
