"""Peer methods. Each module exposes ``solve(y, op, prior, *, generator, **hyper)``."""
