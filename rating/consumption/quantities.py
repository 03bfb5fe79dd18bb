"""What consumption hands to pricing: quantities per touched (meter, billing period)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodQuantities:
    """Touched (meter, billing period) pairs with their consumption per TOU period."""

    meter_index: np.ndarray  # int32, registry index (registry.meters[i])
    period_start: np.ndarray  # int32, first local day, days since 1970-01-01 (Arrow date32)
    period_end: np.ndarray  # int32, exclusive end: the next period's first day
    qty: np.ndarray  # int64 (n, T): quantity units per TOU index; T >= every tariff's tou_count
