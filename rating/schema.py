"""Arrow schemas of what the engine writes: charge lines and anomalies."""

from __future__ import annotations

import pyarrow as pa

from rating.model.site import PRICE_DECIMALS, Site

STRING = pa.string()



def charges_schema(site: Site, meter_id_type: pa.DataType = STRING) -> pa.Schema:
    """One row per charge line. `period_end` is the last day of the period
    (inclusive); `slab` counts from 1; `amount` is rounded to the minor unit.
    Components: energy, slab_fee, package, export, fixed_charge, area_charge, fee:<name>,
    minimum_charge, tax:<name> (docs/tariffs.md) and shared_area
    (docs/apportionment.md)."""
    return pa.schema(
        [
            ("account_id", pa.string()),
            ("meter_id", meter_id_type),  # null on account-level lines
            ("tariff_id", pa.string()),
            ("period_start", pa.date32()),
            ("period_end", pa.date32()),
            ("component", pa.string()),
            ("tou_period", pa.string()),
            ("slab", pa.int16()),
            ("quantity", pa.decimal128(38, site.quantity_decimals)),
            ("unit_price", pa.decimal128(38, PRICE_DECIMALS)),
            ("amount", pa.decimal128(38, site.minor_unit_exponent)),
        ]
    )


def anomalies_schema(site: Site, meter_id_type: pa.DataType = STRING) -> pa.Schema:
    """One row per reading that was not priced as it came (or was a rollover).
    `row` is the reading's 0-based position in the input."""
    return pa.schema(
        [
            ("row", pa.int64()),
            ("meter_id", meter_id_type),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("value", pa.decimal128(38, site.quantity_decimals)),
            ("code", pa.string()),
            ("reason", pa.string()),
            ("delta", pa.decimal128(38, site.quantity_decimals)),
            ("priced", pa.bool_()),
        ]
    )
