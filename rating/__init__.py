"""rating: exact, high-throughput metering and rating for residential communities.

    import rating
    config = rating.load_config("site.toml")
    result = rating.rate("readings.parquet", config=config)
    result.charges, result.anomalies, result.consumption   # Arrow tables
"""

from rating.config.loader import Config, load_config
from rating.engine import Rater, RatingResult, rate

__version__ = "0.1.0"
__all__ = ["Config", "Rater", "RatingResult", "load_config", "rate"]
