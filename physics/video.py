"""Video operator of LVTINO: temporal average pooling by ``t`` then spatial down-sampling by ``s``.

Videos are (B, T, C, H, W). Both stages are separable, so the operator is a Kronecker product
with an exact SVD (temporal block average x spatial block average or bicubic filter).
"""
from __future__ import annotations

from .downsampling import bicubic_kernel_1d
from .separable import KroneckerOperator, block_average, filter_then_decimate


class TemporalSpatialDownsampling(KroneckerOperator):
    name = "video_downsampling"
    item_ndim = 4

    def __init__(self, video_shape, t: int, s: int, spatial_filter: str = "block", sigma_y: float = 0.0):
        T, _, H, W = video_shape
        if T % t:
            raise ValueError(f"temporal factor {t} must divide the number of frames {T}")
        if spatial_filter == "block":
            rows, cols = block_average(H, s), block_average(W, s)
        elif spatial_filter == "bicubic":
            k = bicubic_kernel_1d(s)
            rows, cols = filter_then_decimate(k, H, s), filter_then_decimate(k, W, s)
        else:
            raise ValueError(f"unknown spatial filter {spatial_filter!r}; valid: 'block', 'bicubic'")
        super().__init__({-4: block_average(T, t), -2: rows, -1: cols}, sigma_y)
