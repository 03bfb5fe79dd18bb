"""The `rating` command: one module per group of verbs, and what they print and write."""
