"""Checked reading of what users hand in: text files, Arrow tables and files, cells
of a column. One validation layer shared by the configuration and the readings."""
