"""VIDUE (Shang et al., CVPR 2023) as a row of LVTINO's Problem C tables: its interpolation of the measured frames
(x8 in time), upsampled bilinearly to the clip's size, as LVTINO's code makes its warm start
(``priors.vidue.interpolate_clip``): x_hat = up(VIDUE(y)). One network call per window of 4 measured frames; no
diffusion prior, so NFE = 0 (the published table counts VIDUE as 1). Paper profile only: the embedded profile has
no interpolation network for moving digits.
"""
from __future__ import annotations

import torch

PAPER_NAME = "VIDUE"


@torch.no_grad()
def solve(y: torch.Tensor, op, prior=None, *, generator=None, interpolator: str = "vidue_gopro") -> torch.Tensor:
    """``interpolator``: the VIDUE checkpoint of the catalogue (fetched and verified before the job)."""
    from ipbench.priors.paper import vidue_network
    from ipbench.priors.vidue import interpolate_clip
    if y.ndim != 5:
        raise ValueError(f"VIDUE interpolates clips (B, T, C, H, W); got measurements of shape {tuple(y.shape)}")
    T, _, H, W = op.A_adjoint(y).shape[1:]
    net = vidue_network(interpolator).to(y.device)
    return torch.stack([interpolate_clip(net, clip, T, (H, W)) for clip in y]).to(y)
