"""Configuration: the site file and the files it names (tariffs, meters, accounts,
groups) read and checked into the model."""

from rating.config.loader import Config, load_config

__all__ = ["Config", "load_config"]
