"""Plumbing of the suite: configuration checks, seeding, run records and the stage commands
that the Snakemake rules call (``python -m ipbench <stage> ...``)."""
