"""Consumption: normalised readings -> quantities per (meter, billing period, TOU
period), with the anomalies found on the way. The timeline (periods, TOU, the
reading window) and the carried per-meter totals live here too."""
