"""Sessions to amounts, vectorised: the rules of
parking_reference.charge_reference in closed form per session.

With the day cut into its 1440 / s steps of s minutes at each phase r (0..s-1)
and the price sums of those steps laid out twice over (`_cycle_sums`), the
charge of n steps from a local minute is a difference of two entries plus
whole cycles. The steps of the first 24 hours from entry are the first
L - free // s (L = 1440 / s); every later 24 hours holds L whole steps, one
full cycle; so a stay costs min(cap, first window) + m x min(cap, cycle) +
min(cap, last window).
"""

from __future__ import annotations

import numpy as np

from rating.fixedpoint import round_div_array
from rating.model.site import PRICE_DECIMALS, Site
from rating.usage.parking_reference import MINUTE_US
from rating.usage.parking_tariff import ParkingTariff

_NO_CAP_U = 2**62


def charges_u(tariff: ParkingTariff, entry_us: np.ndarray, exit_us: np.ndarray,
              offsets_us: np.ndarray) -> np.ndarray:
    """Each stay's charge before rounding, int64 10^-6 units (entry's offset throughout)."""
    step = tariff.step_minutes
    per_day = 1440 // step
    sums = _cycle_sums(tariff)
    start_us = entry_us + tariff.free_minutes * MINUTE_US
    chargeable_us = exit_us - start_us
    steps = np.where(chargeable_us > 0, -(-chargeable_us // (step * MINUTE_US)), 0)
    minute = (start_us + offsets_us) // MINUTE_US % 1440
    phase = minute % step
    first = np.minimum(steps, per_day - tariff.free_minutes // step)
    rest = steps - first
    whole_days, last = np.divmod(rest, per_day)
    later_minute = (minute + (per_day - tariff.free_minutes // step) * step) % 1440
    cap = _NO_CAP_U if tariff.daily_cap is None else int(tariff.daily_cap.scaleb(PRICE_DECIMALS))
    row = phase * (2 * per_day + 1)
    total = np.minimum(_run(sums, row, minute // step, first), cap)
    total += whole_days * np.minimum(sums[row + per_day], cap)
    total += np.minimum(_run(sums, row, later_minute // step, last), cap)
    return total


def _run(sums: np.ndarray, row: np.ndarray, index: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Σ of `count` (< 2L) consecutive step prices from step `index` of a phase's cycle."""
    return sums[row + index + count] - sums[row + index]


def _cycle_sums(tariff: ParkingTariff) -> np.ndarray:
    """Per phase r, running sums over two cycles of the step prices at minutes
    r, r + s, r + 2s, ... (mod 1440), each row 2L + 1 long, flattened."""
    step = tariff.step_minutes
    per_day = 1440 // step
    prices = tariff.minute_prices_u()
    starts = (np.arange(step)[:, None] + step * np.arange(2 * per_day)[None, :]) % 1440
    running = np.zeros((step, 2 * per_day + 1), np.int64)
    np.cumsum(prices[starts], axis=1, out=running[:, 1:])
    return running.ravel()


def amounts_minor(charges: np.ndarray, site: Site) -> np.ndarray:
    """Charges rounded once to the minor unit by the site's rule."""
    return round_div_array(charges, 10 ** (PRICE_DECIMALS - site.minor_unit_exponent), site.rounding)
