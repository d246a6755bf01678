"""Least-squares reconstruction x = A^dagger y (truncated pseudo-inverse through the SVD).

Singular values below ``rcond * s_max`` are dropped: with rcond = 0 the exact pseudo-inverse
amplifies the noise without bound on blurs. Operators without a pseudo-inverse (JPEG) return
their natural estimate (the decoded image). No network: NFE = 0.
"""
from __future__ import annotations

import torch

PAPER_NAME = None  # no published row


@torch.no_grad()
def solve(y: torch.Tensor, op, prior=None, *, generator=None, rcond: float = 0.03) -> torch.Tensor:
    if not 0 <= rcond < 1:
        raise ValueError(f"rcond must be in [0, 1), got {rcond}")
    return op.A_dagger(y, rcond=rcond).clamp(0, 1)
