"""The slow, readable Decimal references that define what rating and apportionment
compute. Nothing in production imports them; tests hold the fast paths equal to them."""
