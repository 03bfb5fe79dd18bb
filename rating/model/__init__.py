"""The model: what a site is — its calendar and currency, its tariffs, its meters
and accounts, its shared-area groups. Plain data, loaded once; every stage reads it."""
