"""Conditional W2 of UD2M's MNIST study: the Gaussian (Frechet) closed form of the conditional
Wasserstein-2 distance, CFID (Soloveitchik et al. 2021), between p(x | y) and p(x_hat | y).

For Gaussian fits of (x, y) and (x_hat, y) in a feature space:

    CFID = |m_x - m_xh|^2 + tr[(C_xy - C_xhy) C_yy^+ (C_xy - C_xhy)^T]
           + tr(C_x|y) + tr(C_xh|y) - 2 tr[(C_x|y^1/2 C_xh|y C_x|y^1/2)^1/2],
    C_x|y = C_xx - C_xy C_yy^+ C_xy^T,

a *squared* distance, not square-rooted (as the official code). ``moments='centered'`` uses
covariances (the definition); ``'uncentered'`` reproduces the official UD2M code, which uses
running uncentered second moments.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


def _psd_sqrt(C: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((C + C.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def conditional_w2_from_moments(m_x, m_xh, C_xx, C_xhxh, C_yy, C_xy, C_xhy) -> float:
    P = np.linalg.pinv(C_yy)
    D = C_xy - C_xhy
    C_x_y = C_xx - C_xy @ P @ C_xy.T
    C_xh_y = C_xhxh - C_xhy @ P @ C_xhy.T
    s = _psd_sqrt(C_x_y)
    cross = linalg.sqrtm(s @ C_xh_y @ s)
    cross = np.real(cross)
    value = (np.sum((m_x - m_xh) ** 2) + np.trace(D @ P @ D.T)
             + np.trace(C_x_y) + np.trace(C_xh_y) - 2 * np.trace(cross))
    return float(max(value, 0.0))


def conditional_w2(x: np.ndarray, x_hat: np.ndarray, y: np.ndarray, moments: str = "centered") -> float:
    """CFID from paired samples: rows of ``x`` (truth), ``x_hat`` (estimates) and ``y`` (measurements),
    each already embedded in its feature space, shapes (N, d_x), (N, d_x), (N, d_y)."""
    if moments not in ("centered", "uncentered"):
        raise ValueError(f"moments must be 'centered' or 'uncentered', got {moments!r}")
    x, x_hat, y = (np.asarray(a, np.float64).reshape(len(a), -1) for a in (x, x_hat, y))
    if not len(x) == len(x_hat) == len(y):
        raise ValueError(f"x, x_hat and y must pair up, got {len(x)}, {len(x_hat)}, {len(y)} rows")
    m_x, m_xh, m_y = x.mean(0), x_hat.mean(0), y.mean(0)
    if moments == "centered":
        x, x_hat, y = x - m_x, x_hat - m_xh, y - m_y
    n = len(x)
    return conditional_w2_from_moments(m_x, m_xh, x.T @ x / n, x_hat.T @ x_hat / n, y.T @ y / n,
                                       x.T @ y / n, x_hat.T @ y / n)
