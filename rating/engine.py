"""The public rating API: `rate()` for a whole input, `Rater` batch by batch.

Pipeline per batch: normalise readings (rating.readings.batches) -> consumption
kernel (rating.consumption.kernel) -> period totals carried across batches ->
exact pricing (rating.pricing.pricer). An incremental charge is the priced totals
after a batch minus before it, line by line (docs/semantics.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating.apportion.lines import shared_area_lines
from rating.apportion.plan import prepare
from rating.apportion.shapes import shared_lines_schema
from rating.config.loader import Config
from rating.consumption.asked import AskedPeriods
from rating.consumption.kernel import (
    ANCIENT_READING_INDEX,
    ANOMALY_CODES,
    ANOMALY_REASONS,
    FUTURE_READING_INDEX,
    NULL_VALUE_INDEX,
    ROLLOVER_CODE,
    STATE_DTYPE,
    UNKNOWN_METER_INDEX,
    Anomalies,
    TimelineKeys,
    new_meter_states,
    rate_consumption,
)
from rating.consumption.period_totals import PeriodTotals
from rating.consumption.quantities import AccountPeriods, PeriodQuantities, period_keys
from rating.consumption.window import ReadingWindow
from rating.errors import UnknownMeterError
from rating.fixedpoint import decimal_array, decimal_array_from_words, decimal_units
from rating.model.days import date_of
from rating.model.months import months_of
from rating.pricing.lines import LineAmounts
from rating.pricing.pricer import price_line_amounts, price_periods
from rating.readings.batches import NormalizedReadings, normalize_readings
from rating.readings.prefetch import prefetched
from rating.readings.sources import SourceBatch, iter_source_batches
from rating.schema import anomalies_schema

UNKNOWN_METER_POLICIES = ("report", "error")
# Anomalies that imply a consumption; the others have no delta.
CODES_WITH_DELTA = [ANOMALY_CODES.index(c) for c in ("negative_delta", "rollover", "spike")]
OUTSIDE_PERIODS_CODE = ANOMALY_CODES.index("outside_periods")
# The fields of a meter's state record that readings move; the others are its settings.
READING_FIELDS = ("last_ts", "last_value", "has_last")
READING_DTYPE = np.dtype([(name, STATE_DTYPE[name]) for name in READING_FIELDS])
LINE_KEYS = ("account_id", "meter_id", "tariff_id", "period_start", "period_end", "component",
             "tou_period", "slab")


@dataclass(frozen=True)
class RatingResult:
    charges: pa.Table  # rating.schema.charges_schema (+ the shared-area columns with groups)
    anomalies: pa.Table  # rating.schema.anomalies_schema
    consumption: pa.Table  # one row per (meter, billing period, TOU period), as metered
    apportionment: pa.Table | None = None  # shared-area problems, when the site has groups


@dataclass(frozen=True)
class RaterState:
    """What a Rater carries between batches (see Rater.snapshot)."""

    meter_states: np.ndarray  # rating.consumption.kernel.STATE_DTYPE, one per registry meter
    totals: PeriodTotals
    rows_seen: int


@dataclass(frozen=True)
class BatchUndo:
    """How to take one ingested batch back (Rater.undo): the state records of
    the meters it read, as they were before it, and what was carried before it."""

    meters: np.ndarray  # registry indexes of the batch's known meters
    meter_states: np.ndarray  # their records before the batch
    totals: PeriodTotals
    rows_seen: int


@dataclass(frozen=True)
class BatchChange:
    """What an ingested batch changed (Rater.change_of). `after` and `before`
    are the carried totals whose price it changes: every meter of each account
    it touched, in the periods it touched (an account's own lines depend on
    all of its meters)."""

    periods: PeriodQuantities  # the batch's own quantities
    after: PeriodQuantities
    before: PeriodQuantities
    moved: np.ndarray  # registry indexes of the meters whose reading state it moved


@dataclass(frozen=True)
class RaterImage:
    """Part of a Rater's state by registry position (Rater.image_of, Rater.load):
    the reading state of some meters and some carried totals."""

    meters: np.ndarray  # int64 registry indexes
    readings: np.ndarray  # READING_DTYPE, one per meter
    totals: PeriodQuantities
    rows_seen: int


@dataclass(frozen=True)
class _Step:
    undo: BatchUndo
    totals: PeriodTotals
    periods: PeriodQuantities
    anomalies: pa.Table
    rows: int


class Rater:
    """Rates readings batch after batch, carrying meter state and period totals.

    `ingest` advances the totals, for callers that price once at the end.
    Incremental rating (what a batch adds: after − before) is `change_of` a
    batch from `ingest_undoable`, priced by `added_charges` (lines) or
    `added_amounts` (money only); `feed` is both steps. `image_of` and `load`
    persist and rebuild the state in parts.
    A batch that raises changes nothing. `now` (aware, or naive UTC) is the
    instant the reading window's future bound counts from: the wall clock
    when None (docs/semantics.md, "The reading window").
    """

    def __init__(self, config: Config, *, unknown_meters: str = "report"):
        if unknown_meters not in UNKNOWN_METER_POLICIES:
            raise ValueError(f"unknown_meters must be one of {UNKNOWN_METER_POLICIES}")
        self.config = config
        self.unknown_meters = unknown_meters
        self.states = new_meter_states(config.registry, config.site)
        self.keys = TimelineKeys(config.registry, config.site, config.tariffs)
        self.window = ReadingWindow(self.keys, self.states["interval_us"] * self.states["is_interval"])
        self.tou_width = max((t.tou_count for t in config.tariffs.values()), default=1)
        self.account_of_meter = config.registry.account_of_meter
        self.totals = PeriodTotals.empty(self.tou_width)
        self.rows_seen = 0
        self._asked: AskedPeriods | None = None  # rate() given periods: readings outside them reported

    def ingest(self, batch: pa.RecordBatch | pa.Table, *, where: str = "readings",
               row_offset: int | None = None, now: dt.datetime | None = None
               ) -> tuple[PeriodQuantities, pa.Table]:
        """Rate one batch into the carried totals; returns its own period
        quantities and its anomalies table. Errors name `where` and the row,
        counted from `row_offset` (default: rows rated so far)."""
        periods, anomalies, _undo = self.ingest_undoable(batch, where=where, row_offset=row_offset,
                                                         now=now)
        return periods, anomalies

    def ingest_undoable(self, batch: pa.RecordBatch | pa.Table, *, where: str = "readings",
                        row_offset: int | None = None, now: dt.datetime | None = None
                        ) -> tuple[PeriodQuantities, pa.Table, BatchUndo]:
        """`ingest`, and how to take the batch back (`undo`)."""
        row_offset = self.rows_seen if row_offset is None else row_offset
        step = self._advance(self._normalized(batch, where, row_offset), where, row_offset, now)
        self._commit(step)
        return step.periods, step.anomalies, step.undo

    def _ingest_once(self, readings: NormalizedReadings, *, where: str, row_offset: int,
                     now: dt.datetime | None) -> pa.Table:
        """`ingest` of a batch normalised already (`_normalized`), for rate():
        its anomalies table. Not undoable: an error leaves this Rater unusable."""
        step = self._advance(readings, where, row_offset, now, undoable=False)
        self._commit(step)
        return step.anomalies

    def _normalized(self, batch: pa.RecordBatch | pa.Table, where: str, row_offset: int
                    ) -> NormalizedReadings:
        return normalize_readings(batch, registry=self.config.registry, site=self.config.site,
                                  where=where, row_offset=row_offset)

    def undo(self, undo: BatchUndo) -> None:
        """Take an ingested batch back. Batches ingested after it must be
        taken back first, newest first (their records were saved on top)."""
        self.states[undo.meters] = undo.meter_states
        self.totals = undo.totals
        self.rows_seen = undo.rows_seen

    def feed(self, batch: pa.RecordBatch | pa.Table, *, where: str = "readings",
             row_offset: int | None = None, now: dt.datetime | None = None) -> RatingResult:
        """Rate one batch; the charges are what it adds, line by line."""
        periods, anomalies, undo = self.ingest_undoable(batch, where=where, row_offset=row_offset, now=now)
        try:
            charges = self.added_charges(self.change_of(periods, undo))
        except BaseException:
            self.undo(undo)
            raise
        return RatingResult(charges, anomalies, self.consumption_table(periods))

    def change_of(self, periods: PeriodQuantities, undo: BatchUndo) -> BatchChange:
        """What the batch just ingested (its `periods` and `undo`, from
        `ingest_undoable`) changed; call it before the next batch. Costs the
        blocks of the periods it touched, never a pass over all carried totals."""
        after = self.totals.select_like(periods, self.account_of_meter)
        before = undo.totals.select_like(periods, self.account_of_meter)
        was, now = undo.meter_states, self.states[undo.meters]
        # an accepted reading moves `last_ts` (duplicates and older readings are
        # refused) or, on a meter's first reading, `has_last`
        moved = (was["last_ts"] != now["last_ts"]) | (was["has_last"] != now["has_last"])
        return BatchChange(periods, after, before, undo.meters[moved])

    def added_charges(self, change: BatchChange) -> pa.Table:
        """The charge lines a batch adds: after − before, line by line."""
        return subtract_lines(self.price(change.after), self.price(change.before))

    def added_amounts(self, change: BatchChange) -> LineAmounts:
        """The money a batch adds as signed line amounts: the lines after it,
        and the lines before it negated. Their sum over any grouping of lines
        (account, wallet, ...) is what the batch adds to that group."""
        config = self.config
        after, before = (price_line_amounts(p, registry=config.registry, tariffs=config.tariffs,
                                            site=config.site) for p in (change.after, change.before))
        return LineAmounts(np.concatenate([after.account_rank, before.account_rank]),
                           np.concatenate([after.meter_index, before.meter_index]),
                           np.concatenate([after.amount_minor, -before.amount_minor]))

    def image_of(self, change: BatchChange | None = None) -> RaterImage:
        """The after-image of what a batch changed (the meters it moved and the
        (meter, period) totals it touched), taken like `change_of` before the
        next batch, to fold with `load`; the whole state (every meter with a
        reading, every total) when `change` is None."""
        if change is None:
            meters = np.flatnonzero(self.states["has_last"][: len(self.config.registry)])
            totals = self.totals.as_quantities()
        else:
            meters, after = change.moved, change.after
            touched = period_keys(change.periods.meter_index, change.periods.period_start)
            totals = _take_rows(after, np.isin(period_keys(after.meter_index, after.period_start), touched))
        readings = np.zeros(len(meters), dtype=READING_DTYPE)
        for name in READING_FIELDS:
            readings[name] = self.states[name][meters]
        return RaterImage(meters.astype(np.int64), readings, totals, self.rows_seen)

    def load(self, images: list[RaterImage]) -> None:
        """Set the Rater to the fold of `images` (oldest first) over a fresh
        state: later images win, meter by meter and (meter, period) by pair."""
        states = new_meter_states(self.config.registry, self.config.site)
        for image in images:
            for name in READING_FIELDS:
                states[name][image.meters] = image.readings[name]
        totals = [image.totals for image in images]
        if totals:
            index = np.concatenate([t.meter_index for t in totals])
            keys = period_keys(index, np.concatenate([t.period_start for t in totals]))
            # unique over the reversed order keeps the first, i.e. the latest, of each key
            _, first = np.unique(keys[::-1], return_index=True)
            pick = len(keys) - 1 - first
            width = self.tou_width
            qty = np.concatenate([_widened(t.qty, width) for t in totals])
            carried = PeriodTotals(PeriodQuantities(
                meter_index=index[pick].astype(np.int32),
                period_start=np.concatenate([t.period_start for t in totals])[pick].astype(np.int32),
                period_end=np.concatenate([t.period_end for t in totals])[pick].astype(np.int32),
                qty=qty[pick]))
        else:
            carried = PeriodTotals.empty(self.tou_width)
        self.restore(RaterState(states, carried, images[-1].rows_seen if images else 0))

    def snapshot(self) -> RaterState:
        """Meter states and period totals, to persist beside a balance change."""
        return RaterState(self.states.copy(), self.totals, self.rows_seen)

    def restore(self, state: RaterState) -> None:
        """Go back to a snapshot taken from a Rater of the same configuration."""
        if state.meter_states.dtype != self.states.dtype or len(state.meter_states) != len(self.states):
            raise ValueError("snapshot does not match this registry")
        self.states = state.meter_states.copy()
        self.totals = state.totals
        self.rows_seen = state.rows_seen

    def _advance(self, readings: NormalizedReadings, where: str, row_offset: int,
                 now: dt.datetime | None, *, undoable: bool = True) -> _Step:
        """Everything a batch changes. The kernel moves the state records of
        the batch's meters in place (copying every record per batch costs
        more than rating a small batch); they are saved first and put back
        if anything fails, so an error changes nothing. The totals only
        change at `_commit`; `_Step.undo` takes the whole step back.
        Without `undoable` (rate(), whose Rater dies with an error) nothing
        is saved and an error leaves the records part-way."""
        meter_index = self._kernel_meter_index(readings, where, row_offset, now)
        if undoable:
            read = np.zeros(len(self.states), dtype=bool)
            read[meter_index[meter_index >= 0]] = True
            meters = np.flatnonzero(read)  # sorted and distinct, cheaper than np.unique
        else:
            meters = np.empty(0, dtype=np.int64)
        undo = BatchUndo(meters, self.states[meters], self.totals, self.rows_seen)
        try:
            periods, anomalies = rate_consumption(
                meter_index, readings.ts_us, readings.value_qty, self.states, self.keys, where=where,
                row_offset=row_offset,
            )
            outside = None if self._asked is None else self._asked.outside(meter_index, readings.ts_us)
            if outside is not None:
                anomalies = _with_outside(anomalies, outside)
            return _Step(undo, self.totals.merge(periods), periods,
                         self._anomalies_table(readings, anomalies), len(readings.ts_us))
        except BaseException:
            self.states[meters] = undo.meter_states
            raise

    def _commit(self, step: _Step) -> None:
        self.totals = step.totals
        self.rows_seen += step.rows

    def charges(self, accounts: AccountPeriods | None = None) -> pa.Table:
        """Charge lines of every period rated so far (and of `accounts`' own tariffs)."""
        return self.price(self.totals.as_quantities(), accounts)

    def consumption_table(self, periods: PeriodQuantities | None = None) -> pa.Table:
        """Quantities per (meter, period, TOU period); all rated so far by default."""
        periods = self.totals.as_quantities() if periods is None else periods
        return consumption_table(periods, self.config)

    def price(self, periods: PeriodQuantities, accounts: AccountPeriods | None = None) -> pa.Table:
        """Charge lines of the given period quantities (nothing carried changes)."""
        config = self.config
        return price_periods(periods, registry=config.registry, tariffs=config.tariffs, site=config.site,
                             accounts=accounts)

    def keep_periods(self, asked: AskedPeriods) -> None:
        """Cut the carried totals to the asked periods, with a zero total for
        every active (meter, asked period) that no reading touched."""
        carried = self.totals.as_quantities()
        kept = _take_rows(carried, asked.holds(carried))
        zeros = asked.meter_periods(self.tou_width)
        self.totals = PeriodTotals(PeriodQuantities(
            meter_index=np.concatenate([kept.meter_index, zeros.meter_index]),
            period_start=np.concatenate([kept.period_start, zeros.period_start]),
            period_end=np.concatenate([kept.period_end, zeros.period_end]),
            qty=np.concatenate([_widened(kept.qty, self.tou_width), zeros.qty])))

    def _kernel_meter_index(self, readings: NormalizedReadings, where: str, row_offset: int,
                            now: dt.datetime | None) -> np.ndarray:
        """Registry indexes, with the readings rejected before the kernel
        marked: unknown meter, then outside the reading window, then null value."""
        meter_index = readings.meter_index.copy()
        unknown = meter_index == UNKNOWN_METER_INDEX
        if self.unknown_meters == "error" and unknown.any():
            row = int(np.argmax(unknown))
            meter = readings.meter_id[row].as_py()
            raise UnknownMeterError(f"unknown meter {meter!r}", where=f"{where} row {row_offset + row + 1}",
                                    meter=meter, row=row_offset + row + 1, column="meter_id")
        future, ancient = self.window.outside(meter_index, readings.ts_us, now)
        meter_index[readings.value_null & ~unknown] = NULL_VALUE_INDEX
        if future is not None:
            meter_index[future] = FUTURE_READING_INDEX
        if ancient is not None:
            meter_index[ancient] = ANCIENT_READING_INDEX
        return meter_index

    def _anomalies_table(self, readings: NormalizedReadings, anomalies: Anomalies) -> pa.Table:
        site = self.config.site
        rows = anomalies.row
        codes = [ANOMALY_CODES[c] for c in anomalies.code.tolist()]
        meter_ids = readings.meter_id.take(pa.array(rows, type=pa.int64()))
        if pa.types.is_dictionary(meter_ids.type):
            meter_ids = meter_ids.dictionary_decode()
        meter_id_type = self.config.registry.meter_ids.type
        schema = anomalies_schema(site, meter_id_type)
        return pa.table(
            {
                "row": pa.array(rows + self.rows_seen, type=pa.int64()),
                "meter_id": meter_ids.cast(meter_id_type),
                "ts": pa.array(readings.ts_us[rows], type=pa.timestamp("us", tz="UTC")),
                "value": decimal_array(readings.value_qty[rows], site.quantity_decimals,
                                       readings.value_null[rows]),
                "code": pa.array(codes, type=pa.string()),
                "reason": pa.array([ANOMALY_REASONS[c] for c in codes], type=pa.string()),
                "delta": decimal_array_from_words(anomalies.delta_words, site.quantity_decimals,
                                                  ~np.isin(anomalies.code, CODES_WITH_DELTA)),
                "priced": pa.array(anomalies.code == ROLLOVER_CODE, type=pa.bool_()),
            },
            schema=schema,
        )


def _with_outside(anomalies: Anomalies, outside: np.ndarray) -> Anomalies:
    """The kernel's anomalies and an `outside_periods` row for each reading
    outside the asked periods that has none (at most one row per reading), in
    reading order."""
    outside[anomalies.row] = False
    extra = np.flatnonzero(outside)
    if len(extra) == 0:
        return anomalies
    rows = np.concatenate([anomalies.row, extra])
    order = np.argsort(rows, kind="stable")
    return Anomalies(
        row=rows[order],
        code=np.concatenate([anomalies.code, np.full(len(extra), OUTSIDE_PERIODS_CODE, np.uint8)])[order],
        delta_words=np.concatenate([anomalies.delta_words, np.zeros((len(extra), 2), np.int64)])[order])


def _take_rows(periods: PeriodQuantities, rows: np.ndarray) -> PeriodQuantities:
    return PeriodQuantities(meter_index=periods.meter_index[rows], period_start=periods.period_start[rows],
                            period_end=periods.period_end[rows], qty=periods.qty[rows])


def _widened(qty: np.ndarray, width: int) -> np.ndarray:
    """`qty` with `width` TOU columns (an image may hold fewer, or more, than
    the tariffs now have)."""
    wide = np.zeros((len(qty), width), dtype=np.int64)
    common = min(width, qty.shape[1])
    wide[:, :common] = qty[:, :common]
    return wide


def rate(
    readings,
    *,
    config: Config,
    unknown_meters: str = "report",
    progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
    periods: str | Sequence[str | dt.date] | None = None,
) -> RatingResult:
    """Rate every reading of `readings` (a table, batches, a reader or a file
    path) at once. `progress`, if given, is called with each batch's row count.
    `now` is the reading window's "now" for every batch: the wall clock at
    the start when None. `periods` (`"2025-05"`, `"2025-04..2025-06"`, or a
    list of months) charges those billing periods only, every active meter
    and account in each, readings or not (docs/semantics.md, "Asked periods")."""
    rater = Rater(config, unknown_meters=unknown_meters)
    if periods is not None:
        rater._asked = AskedPeriods(months_of(periods), config.registry, config.site)
    now = dt.datetime.now(dt.timezone.utc) if now is None else now
    anomalies = []

    def normalized() -> Iterator[tuple[SourceBatch, NormalizedReadings]]:
        for item in prefetched(iter_source_batches(readings)):
            yield item, rater._normalized(item.batch, item.where, item.row_offset)

    # a pipeline (rating.readings.prefetch): decoding on one thread, normalising on
    # another, rating here; each stage a bounded two batches ahead
    for item, batch in prefetched(normalized()):
        anomalies.append(rater._ingest_once(batch, where=item.where, row_offset=item.row_offset,
                                            now=now))
        if progress is not None:
            progress(item.batch.num_rows)
    schema = anomalies_schema(config.site, config.registry.meter_ids.type)
    accounts = None
    if rater._asked is not None:
        rater.keep_periods(rater._asked)
        accounts = rater._asked.account_periods()
    charges, apportionment = (
        apportioned_charges(rater, accounts) if config.groups is not None else (rater.charges(accounts), None)
    )
    return RatingResult(
        charges=charges,
        anomalies=pa.concat_tables(anomalies) if anomalies else schema.empty_table(),
        consumption=rater.consumption_table(),
        apportionment=apportionment,
    )


def apportioned_charges(rater: Rater, accounts: AccountPeriods | None = None) -> tuple[pa.Table, pa.Table]:
    """Charges with the site's shared-area groups applied (docs/apportionment.md):
    master meters netted and quantity shares added before pricing, cost shares
    after. Needs whole periods, so it runs on everything rated so far."""
    config = rater.config
    assert config.groups is not None, "only for sites with shared-area groups"
    prepared = prepare(rater.consumption_table(), config.groups, config=config)
    charges = rater.price(rater.totals.merge(prepared.quantity_delta).as_quantities(), accounts)
    lines, problems = shared_area_lines(prepared, charges)
    schema = shared_lines_schema(config.site, config.registry.meter_ids.type)
    table = pa.concat_tables([charges, lines.select(schema.names)], promote_options="default")
    # shared lines next to their account's other lines (the sort is stable)
    return table.cast(schema).sort_by([("account_id", "ascending")]), problems


def consumption_table(periods: PeriodQuantities, config: Config) -> pa.Table:
    """One row per (meter, touched period, TOU period of the version in force)."""
    site, registry = config.site, config.registry
    meter_tariff = registry.meter_tariffs.dictionary_encode()
    tariff_ids = meter_tariff.dictionary.to_pylist()
    meter = periods.meter_index
    tariff_code = meter_tariff.indices.to_numpy(zero_copy_only=False).astype(np.int64)[meter]
    # each distinct (tariff, period start) names its TOU periods once
    pairs, first, pair_of = np.unique(period_keys(tariff_code, periods.period_start),
                                      return_index=True, return_inverse=True)
    pair_of = pair_of.reshape(-1)
    names: list[str | None] = []
    name_start, name_count = np.zeros(len(pairs), np.int64), np.zeros(len(pairs), np.int64)
    for k, row in enumerate(first.tolist()):
        tariff = config.tariffs[tariff_ids[tariff_code[row]]]
        version = tariff.version_on(date_of(int(periods.period_start[row])))
        these = [p.name for p in version.tou.periods] if version.tou else [None]
        name_start[k], name_count[k] = len(names), len(these)
        names.extend(these)
    counts = name_count[pair_of]
    rows = np.repeat(np.arange(len(meter)), counts)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    mask = np.arange(periods.qty.shape[1])[None, :] < counts[:, None]
    qty = periods.qty[mask] if len(counts) else np.empty(0, np.int64)
    meters = pa.array(meter[rows])
    return pa.table(
        {
            "account_id": registry.meter_accounts.take(meters),
            "meter_id": registry.meter_ids.take(meters),
            "tariff_id": registry.meter_tariffs.take(meters),
            "period_start": pa.array(periods.period_start[rows], pa.int32()).cast(pa.date32()),
            "period_end": pa.array(periods.period_end[rows] - 1, pa.int32()).cast(pa.date32()),
            "tou_period": pa.array(names, pa.string()).take(pa.array(name_start[pair_of[rows]] + within)),
            "quantity": decimal_array(qty, site.quantity_decimals),
        }
    )



def subtract_lines(after: pa.Table, before: pa.Table) -> pa.Table:
    """Line-by-line `after − before` of two charge tables; lines whose
    amount and quantity do not change are left out."""
    if before.num_rows == 0:
        return after
    schema = after.schema
    qty_scale = schema.field("quantity").type.scale
    amount_scale = schema.field("amount").type.scale
    left, right = _with_join_keys(after), _with_join_keys(before)
    joined = left.join(right, keys=["_key"], join_type="full outer", right_suffix="_before",
                       coalesce_keys=True)
    amount = _units(joined, "amount", amount_scale) - _units(joined, "amount_before", amount_scale)
    qty = _units(joined, "quantity", qty_scale) - _units(joined, "quantity_before", qty_scale)
    qty_null = joined.column("quantity").is_null().to_numpy(zero_copy_only=False) & joined.column(
        "quantity_before").is_null().to_numpy(zero_copy_only=False)
    columns = {}
    for name in LINE_KEYS + ("unit_price",):
        mine = joined.column(name)
        columns[name] = mine.fill_null(joined.column(f"{name}_before")) if mine.null_count else mine
    columns["quantity"] = decimal_array(qty, qty_scale, qty_null)
    columns["amount"] = decimal_array(amount, amount_scale)
    changed = (amount != 0) | (qty != 0)
    table = pa.table(columns).select(schema.names).cast(schema)
    order = np.argsort(joined.column("_order").fill_null(np.iinfo(np.int64).max).to_numpy(), kind="stable")
    return table.take(pa.array(order[changed[order]]))


def _with_join_keys(table: pa.Table) -> pa.Table:
    """Adds one string key per line (nulls spelled out, since joins never match nulls)."""
    parts = [table.column(k).cast(pa.string()).fill_null("\x00") for k in LINE_KEYS]
    key = pa.compute.binary_join_element_wise(*parts, "\x1f")
    return table.append_column("_key", key).append_column(
        "_order", pa.array(np.arange(table.num_rows, dtype=np.int64))
    )


def _units(table: pa.Table, name: str, scale: int) -> np.ndarray:
    column = table.column(name).combine_chunks()
    units, mask = decimal_units(column, scale)
    return np.where(mask, 0, units)
