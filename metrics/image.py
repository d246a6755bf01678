"""Per-image PSNR and SSIM (scikit-image) on [0, 1] images; estimates are clipped to [0, 1] first."""
from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def _pairs(x_hat: torch.Tensor, x: torch.Tensor):
    if x_hat.shape != x.shape:
        raise ValueError(f"shape mismatch: estimate {tuple(x_hat.shape)} vs truth {tuple(x.shape)}")
    a = x_hat.detach().double().clamp(0, 1).cpu().numpy()
    b = x.detach().double().clamp(0, 1).cpu().numpy()
    return zip(a, b)


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """PSNR in dB of each item of a batch (data range 1)."""
    return np.array([peak_signal_noise_ratio(b, a, data_range=1.0) for a, b in _pairs(x_hat, x)])


def ssim(x_hat: torch.Tensor, x: torch.Tensor) -> np.ndarray:
    """SSIM of each item (Gaussian-weighted, sigma 1.5, as Wang et al. 2004); channels first.

    Video items (T, C, H, W) are scored frame by frame and averaged.
    """
    out = []
    for a, b in _pairs(x_hat, x):
        frames_a = a if a.ndim == 4 else a[None]
        frames_b = b if b.ndim == 4 else b[None]
        out.append(np.mean([structural_similarity(fb, fa, data_range=1.0, channel_axis=0,
                                                  gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False)
                            for fa, fb in zip(frames_a, frames_b)]))
    return np.array(out)
