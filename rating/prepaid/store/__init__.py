"""Hot balances: the store interface and one module per backend (in-process, Redis)."""
