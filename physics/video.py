"""LVTINO's video operators: a temporal stage, then frame-wise spatial down-sampling by ``s``.

Videos are (B, T, C, H, W). The temporal stage is
- ``temporal='pool'``: average pooling by ``t`` (Problems A and C). As the official ``TemporalSRThenSROp``, a
  tail that ``t`` does not divide is padded by repeating the last frame, so T frames give ceil(T / t);
- ``temporal='blur'``: a uniform blur of ``t`` frames, circular in time (Problem B, ``TemporalBlurThenSROp``).
The spatial stage averages s x s blocks or applies deepinv's bicubic ``Downsampling`` (reflect padding, as the
official code). Both stages are separable, so the operator is a Kronecker product with an exact SVD.
"""
from __future__ import annotations

import torch

from .downsampling import bicubic_kernel_1d
from .separable import KroneckerOperator, block_average, circulant, filter_then_decimate


def padded_pooling(n: int, factor: int) -> torch.Tensor:
    """ceil(n / factor) x n matrix: average pooling by ``factor`` after repeating the last sample to fill the
    last block (the padded copies fold back onto the last frame, as the official adjoint does)."""
    out = -(-n // factor)
    M = torch.zeros(out, n, dtype=torch.float64)
    for j in range(out * factor):
        M[j // factor, min(j, n - 1)] += 1.0 / factor
    return M


class TemporalSpatialDownsampling(KroneckerOperator):
    name = "video_downsampling"
    item_ndim = 4

    def __init__(self, video_shape, t: int, s: int, spatial_filter: str = "block", sigma_y: float = 0.0,
                 temporal: str = "pool"):
        T, _, H, W = video_shape
        if temporal == "pool":
            time = padded_pooling(T, t)
        elif temporal == "blur":
            time = circulant(torch.full((t,), 1.0 / t, dtype=torch.float64), T)
        else:
            raise ValueError(f"unknown temporal stage {temporal!r}; valid: 'pool', 'blur'")
        if spatial_filter == "block":
            rows, cols = block_average(H, s), block_average(W, s)
        elif spatial_filter == "bicubic":
            k = bicubic_kernel_1d(s)
            rows, cols = filter_then_decimate(k, H, s), filter_then_decimate(k, W, s)
        else:
            raise ValueError(f"unknown spatial filter {spatial_filter!r}; valid: 'block', 'bicubic'")
        super().__init__({-4: time, -2: rows, -1: cols}, sigma_y)
