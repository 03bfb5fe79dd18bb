"""Events to sessions, vectorised: the rules of parking_reference.pair_reference
over whole arrays (a stable sort by plate keeps each plate's arrival order).

The state carried from batch to batch is, per plate seen, its latest instant
and whether a stay is open; it goes in as one leading pseudo-event per plate
(the open entry, or a MARK that only holds the latest instant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rating.usage.parking_reference import DAY_US, ENTRY, EXIT, LOST, NO_ENTRY
from rating.usage.parking_tariff import SESSION_DAYS_MAX

MARK = 3  # a carried plate's latest instant, with no stay open
ANOMALY_CODES = ("unknown_plate", "out_of_order", "double_entry", "exit_without_entry", "too_long")
_KEY_SPAN_MAX = 2**62


@dataclass(frozen=True)
class Carried:
    """Per plate seen so far (sorted by plate): its latest instant, and whether a stay is open."""

    plates: np.ndarray  # int32
    last_us: np.ndarray  # int64
    open: np.ndarray  # bool: a stay is open, entered at last_us

    @classmethod
    def empty(cls) -> Carried:
        return cls(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, bool))


@dataclass(frozen=True)
class PairedArrays:
    plates: np.ndarray  # int32, per session
    entry_us: np.ndarray  # int64, NO_ENTRY for a lost ticket without an entry
    exit_us: np.ndarray
    lost: np.ndarray  # bool
    rows: np.ndarray  # int64, the exit's row (from 1)
    anomaly_rows: np.ndarray  # int64 (0: a stay carried from an earlier batch)
    anomaly_plates: np.ndarray  # int32 (-1: unknown)
    anomaly_us: np.ndarray
    anomaly_codes: np.ndarray  # int8, index into ANOMALY_CODES
    carried: Carried


def pair(plates: np.ndarray, ts_us: np.ndarray, kinds: np.ndarray, carried: Carried) -> PairedArrays:
    """Sessions and anomalies of one batch (plates -1: unknown), and the state after it."""
    rows = np.arange(1, len(plates) + 1, dtype=np.int64)
    known = plates >= 0
    p = np.concatenate((carried.plates, plates[known]))
    t = np.concatenate((carried.last_us, ts_us[known]))
    k = np.concatenate((np.where(carried.open, ENTRY, MARK).astype(np.int8), kinds[known]))
    r = np.concatenate((np.zeros(len(carried.plates), np.int64), rows[known]))  # row 0: an earlier batch
    order = np.argsort(p, kind="stable")
    p, t, k, r = p[order], t[order], k[order], r[order]
    late = _out_of_order(p, t)
    anomalies = [(rows[~known], plates[~known], ts_us[~known], 0), (r[late], p[late], t[late], 1)]
    keep = ~late
    p, t, k, r = p[keep], t[keep], k[keep], r[keep]
    first, last = _group_edges(p)
    prev_entry = np.zeros(len(p), bool)
    prev_entry[1:] = (k[:-1] == ENTRY) & ~first[1:]
    double = np.zeros(len(p), bool)
    double[:-1] = (k[:-1] == ENTRY) & (k[1:] == ENTRY) & ~last[:-1]
    ends = (k == EXIT) | (k == LOST)
    orphan = (k == EXIT) & ~prev_entry
    entry_us = np.full(len(p), NO_ENTRY, dtype=np.int64)
    entry_us[1:][prev_entry[1:]] = t[:-1][prev_entry[1:]]
    stay_us = np.where(prev_entry, t - np.where(prev_entry, entry_us, t), 0)
    too_long = ends & (stay_us > SESSION_DAYS_MAX * DAY_US)
    anomalies += [(r[double], p[double], t[double], 2), (r[orphan], p[orphan], t[orphan], 3),
                  (r[too_long], p[too_long], t[too_long], 4)]
    session = ends & ~orphan & ~too_long
    after = Carried(p[last], t[last], k[last] == ENTRY)
    rows_a, plates_a, instants_a, codes_a = _joined(anomalies)
    return PairedArrays(p[session], entry_us[session], t[session], k[session] == LOST, r[session],
                        rows_a, plates_a, instants_a, codes_a, after)


def _group_edges(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether each event is its plate's first, and its last."""
    first = np.ones(len(p), bool)
    first[1:] = p[1:] != p[:-1]
    last = np.ones(len(p), bool)
    last[:-1] = first[1:]
    return first, last


def _out_of_order(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Events earlier than an earlier event of their plate: one running maximum
    over (group, instant) keys, instants ranked when the span is too wide."""
    if len(p) < 2:
        return np.zeros(len(p), bool)
    first, _ = _group_edges(p)
    group = np.cumsum(first) - 1
    low = int(t.min())
    span = int(t.max()) - low + 1
    if (int(group[-1]) + 1) * span < _KEY_SPAN_MAX:
        key = group * span + (t - low)
    else:
        distinct, ranks = np.unique(t, return_inverse=True)
        key = group * len(distinct) + ranks
    late = np.zeros(len(p), bool)
    late[1:] = ~first[1:] & (key[1:] < np.maximum.accumulate(key)[:-1])
    return late


def _joined(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = np.concatenate([part[0] for part in parts])
    plates = np.concatenate([part[1] for part in parts]).astype(np.int32)
    instants = np.concatenate([part[2] for part in parts])
    codes = np.concatenate([np.full(len(part[0]), part[3], np.int8) for part in parts])
    return rows, plates, instants, codes
