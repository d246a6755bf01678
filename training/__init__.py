"""Training the embedded networks, distilling UD2M's adapters, gating and installing checkpoints. The top layer:
nothing of the suite imports it (Snakemake runs its modules with ``python -m``)."""
