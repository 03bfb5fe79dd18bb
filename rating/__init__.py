"""rating: exact, high-throughput metering and rating for residential communities."""

__version__ = "0.1.0"
