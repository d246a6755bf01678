"""Forward operators of the suite and ``build_operator``, which makes one from a config entry."""
from __future__ import annotations

import math

from .base import LinearOperator, Operator, SVDOperator, conjugate_gradient, standard_normal
from .blur import GaussianBlur, SeparableBlur, UniformBlur
from .downsampling import Downsampling
from .inpainting import Inpainting
from .jpeg import JPEG
from .separable import KroneckerOperator
from .video import TemporalSpatialDownsampling


def _gaussian_blur(shape, sigma_y, sigma=None, variance=None, kernel_size=None):
    if (sigma is None) == (variance is None):
        raise ValueError("gaussian_blur needs exactly one of 'sigma' or 'variance'")
    return GaussianBlur(shape[-2:], sigma if sigma is not None else math.sqrt(variance), kernel_size, sigma_y)


def _downsampling(shape, sigma_y, factor, filter="block", blur_sigma=None, blur_variance=None,
                  blur_size=None, padding="reflect"):
    if blur_variance is not None:
        blur_sigma = math.sqrt(blur_variance)
    return Downsampling(shape[-2:], factor, filter, sigma_y, padding, blur_sigma, blur_size)


OPERATORS = {
    "gaussian_blur": _gaussian_blur,
    "uniform_blur": lambda shape, sigma_y, kernel_size: UniformBlur(shape[-2:], kernel_size, sigma_y),
    "downsampling": _downsampling,
    "inpainting": lambda shape, sigma_y, keep, mask_seed=0: Inpainting(shape[-3:], keep, mask_seed, sigma_y),
    "jpeg": lambda shape, sigma_y, quality: JPEG(quality, sigma_y),
    "video_downsampling": lambda shape, sigma_y, t, s, spatial_filter="block", temporal="pool":
        TemporalSpatialDownsampling(shape[-4:], t, s, spatial_filter, sigma_y, temporal),
}


def build_operator(spec: dict, item_shape, sigma_y: float) -> Operator:
    """Operator from ``{'name': ..., **params}`` for items of ``item_shape`` ((C, H, W) or (T, C, H, W))."""
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in OPERATORS:
        raise ValueError(f"unknown operator {name!r}; valid operators: {', '.join(sorted(OPERATORS))}")
    try:
        return OPERATORS[name](tuple(item_shape), sigma_y, **spec)
    except TypeError as err:
        raise ValueError(f"bad parameters for operator {name!r}: {err}") from None


__all__ = ["Operator", "LinearOperator", "SVDOperator", "KroneckerOperator", "SeparableBlur", "GaussianBlur",
           "UniformBlur", "Downsampling", "Inpainting", "JPEG", "TemporalSpatialDownsampling", "OPERATORS",
           "build_operator", "conjugate_gradient", "standard_normal"]
