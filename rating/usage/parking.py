"""Rate parking events: a table of entries and exits in, sessions with their
amounts and the anomalies out (`rate_parking`), batch after batch with the
open stays carried (`ParkingRater`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rating.fixedpoint import decimal_array
from rating.model.site import PRICE_DECIMALS
from rating.usage.parking_events import decode_events
from rating.usage.parking_pairing import ANOMALY_CODES, Carried, PairedArrays, pair
from rating.usage.parking_pricing import amounts_minor, charges_u
from rating.usage.parking_reference import NO_ENTRY
from rating.usage.settings import UsageSettings
from rating.usage.zone_offsets import offsets_us

_TS = pa.timestamp("us", tz="UTC")
SESSIONS_SCHEMA = pa.schema([
    ("plate", pa.string()), ("kind", pa.string()), ("account_id", pa.string()), ("tariff_id", pa.string()),
    ("entry", _TS),  # null: a lost ticket without an entry
    ("exit", _TS), ("lost_ticket", pa.bool_()), ("row", pa.int64()), ("amount_minor", pa.int64()),
])
ANOMALIES_SCHEMA = pa.schema([
    ("row", pa.int64()),  # from 1 in the batch; 0: an entry carried from an earlier batch
    ("plate", pa.string()), ("ts", _TS), ("code", pa.string()),
])


@dataclass(frozen=True)
class ParkingResult:
    sessions: pa.Table  # SESSIONS_SCHEMA, by plate then exit
    anomalies: pa.Table  # ANOMALIES_SCHEMA, by row
    events: int

    @property
    def amount_minor(self) -> int:
        return int(np.asarray(self.sessions.column("amount_minor")).sum())

    def totals(self, exponent: int) -> dict[str, object]:
        """A summary: sessions, anomalies per code, and the amount in currency units."""
        counts: dict[str, int] = {}
        for code in self.anomalies.column("code").to_pylist():
            counts[code] = counts.get(code, 0) + 1
        amount = decimal_array(np.array([self.amount_minor]), exponent)[0].as_py()
        return {"events": self.events, "sessions": self.sessions.num_rows, "amount": str(amount),
                "anomalies": dict(sorted(counts.items()))}


class ParkingRater:
    """Rates batch after batch of one site's events, carrying open stays."""

    def __init__(self, settings: UsageSettings, carried: Carried | None = None):
        self.settings = settings
        self.plates = settings.need_plates()
        self.carried = carried or Carried.empty()
        self._tariffs = [settings.tariffs[t] for t in self.plates.tariff_order]

    def rate(self, events: pa.Table | pa.RecordBatch, *, where: str = "events") -> ParkingResult:
        decoded = decode_events(events, self.plates, where=where)
        paired = pair(decoded.plates, decoded.ts_us, decoded.kinds, self.carried)
        amounts = self.amounts_minor(paired)
        self.carried = paired.carried
        return ParkingResult(self._sessions(paired, amounts), self._anomalies(paired, decoded.plate_text),
                             len(decoded.plates))

    def amounts_minor(self, paired: PairedArrays) -> np.ndarray:
        """Each session's amount: its tariff's charge (or lost-ticket price), rounded once."""
        charges = np.zeros(len(paired.plates), np.int64)
        tariff_of = self.plates.tariff_index[paired.plates]
        timed = ~paired.lost
        offsets = np.zeros(len(charges), np.int64)
        offsets[timed] = offsets_us(paired.entry_us[timed], self.settings.site.zone)
        for index, tariff in enumerate(self._tariffs):
            mine = tariff_of == index
            lost, timed_here = mine & paired.lost, mine & timed
            charges[lost] = int(tariff.lost_ticket.scaleb(PRICE_DECIMALS))
            charges[timed_here] = charges_u(tariff, paired.entry_us[timed_here], paired.exit_us[timed_here],
                                            offsets[timed_here])
        return amounts_minor(charges, self.settings.site)

    def _sessions(self, paired: PairedArrays, amounts: np.ndarray) -> pa.Table:
        plates, index = self.plates, pa.array(paired.plates)
        entry = pa.array(paired.entry_us, _TS, mask=paired.entry_us == NO_ENTRY)
        return pa.table([plates.plates.take(index), plates.kinds.take(index), plates.account_ids.take(index),
                         plates.tariff_ids.take(index), entry, pa.array(paired.exit_us, _TS),
                         pa.array(paired.lost), pa.array(paired.rows), pa.array(amounts, pa.int64())],
                        schema=SESSIONS_SCHEMA)

    def _anomalies(self, paired: PairedArrays, plate_text: pa.Array) -> pa.Table:
        order = np.lexsort((paired.anomaly_codes, paired.anomaly_rows))
        rows, plates = paired.anomaly_rows[order], paired.anomaly_plates[order]
        known = self.plates.plates.take(pa.array(np.maximum(plates, 0))).to_numpy(zero_copy_only=False)
        sent = plate_text.take(pa.array(np.maximum(rows - 1, 0))).cast(pa.string()) if len(rows) else \
            pa.array([], pa.string())
        text = np.where(plates >= 0, known, sent.to_numpy(zero_copy_only=False))
        codes = pa.array(ANOMALY_CODES).take(pa.array(paired.anomaly_codes[order].astype(np.int64)))
        return pa.table([pa.array(rows), pa.array(text, pa.string()), pa.array(paired.anomaly_us[order], _TS),
                         codes], schema=ANOMALIES_SCHEMA)


def rate_parking(events: pa.Table | pa.RecordBatch, settings: UsageSettings, *,
                 where: str = "events") -> ParkingResult:
    """Sessions and anomalies of a whole input (nothing carried in; stays still open are left out)."""
    return ParkingRater(settings).rate(events, where=where)
