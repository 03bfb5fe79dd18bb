"""Pricing: quantities per (meter, period) -> charge lines, by each meter's tariff
version (slabs, TOU, fixed and area charges, fees, minimums, taxes)."""

from rating.pricing.pricer import price_periods

__all__ = ["price_periods"]
