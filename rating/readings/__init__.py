"""Readings: sources (files, tables, batches) split into batches and normalised to
the columns the kernel takes (meter index, UTC microseconds, fixed-point value)."""

from rating.readings.batches import normalize_readings, to_fixed

__all__ = ["normalize_readings", "to_fixed"]
