"""What a re-rating changes: reversal and replacement lines against previous charges.

A line rated before and rated again the same, in every column, is no change
and is left out. Every other previous line is reversed (a `reversal` line:
the line as it was, quantity and amount negated) and every other new line is
a `replacement`, so an account's changes sum to what it is charged now minus
what it was charged before, and the previous lines plus the changes are the
new lines, line for line. Lines match as a multiset: two equal lines before
and one now reverse one of them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rating.errors import InputError

REVERSAL, REPLACEMENT = "reversal", "replacement"
NEGATED = ("quantity", "amount")


def changes_schema(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field("change", pa.string(), nullable=False))


def aligned(previous: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """`previous` in the new lines' schema: columns it lacks (the shared-area
    ones of a site that had no groups) are null."""
    extra = sorted(set(previous.column_names) - set(schema.names))
    if extra:
        raise InputError(f"previous charges have columns rating does not write: {extra}", where=where)
    columns = []
    for field in schema:
        if field.name in previous.column_names:
            try:
                columns.append(previous.column(field.name).cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(f"column {field.name!r}: {exc}", where=where) from None
        else:
            columns.append(pa.nulls(previous.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def charge_changes(previous: pa.Table, now: pa.Table) -> pa.Table:
    """The reversal and replacement lines from `previous` (aligned) to `now`,
    by account (stable: within an account reversals first, each in its table's order)."""
    old_keys, new_keys = _occurrence_keys(previous), _occurrence_keys(now)
    gone = pc.invert(pc.is_in(old_keys, value_set=new_keys))
    came = pc.invert(pc.is_in(new_keys, value_set=old_keys))
    reversed_lines = _negated(previous.filter(gone))
    parts = [_marked(reversed_lines, REVERSAL), _marked(now.filter(came), REPLACEMENT)]
    return pa.concat_tables(parts).sort_by("account_id")


def _occurrence_keys(table: pa.Table) -> pa.Array:
    """One text key per line: every column, and which occurrence of an equal line it is."""
    parts = [table.column(name).cast(pa.string()).fill_null("\x00") for name in table.column_names]
    if not parts or table.num_rows == 0:
        return pa.array([], pa.string())
    key = pc.binary_join_element_wise(*parts, "\x1f").combine_chunks()
    order = pc.sort_indices(key).to_numpy()
    sorted_key = key.take(pa.array(order))
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = pc.not_equal(sorted_key[1:], sorted_key[:-1]).to_numpy(zero_copy_only=False)
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))
    occurrence = np.empty(len(order), dtype=np.int64)
    occurrence[order] = np.arange(len(order)) - run_start
    return pc.binary_join_element_wise(key, pa.array(occurrence).cast(pa.string()), "\x1e")


def _negated(table: pa.Table) -> pa.Table:
    for name in NEGATED:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, table.schema.field(i), pc.negate_checked(table.column(name)))
    return table


def _marked(table: pa.Table, change: str) -> pa.Table:
    return table.append_column(pa.field("change", pa.string(), nullable=False),
                               pa.array([change] * table.num_rows, pa.string()))
