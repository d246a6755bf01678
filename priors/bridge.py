"""Image-to-image Schroedinger bridges (I2SB; Liu et al., ICML 2023): the bridge schedule, the bridge
network behind a small protocol, its training on (clean, degraded) pairs, and the bridge sampler that
I2SB and CDDB share.

Schedule over n = 0..N-1 (N = 1000): beta = linspace(sqrt(1e-4), sqrt(beta_max / N), N)^2, its first half
mirrored; sigma_n^2 = sum_{k<=n} beta_k (from the clean end x_0), sigmabar_n^2 = sum_{k>=n} beta_k (from the
degraded end x_1). Training (x_1 = the degraded image at the clean image's size):

    x_n = (sigmabar_n^2 x_0 + sigma_n^2 x_1) / (sigma_n^2 + sigmabar_n^2) [+ sqrt(sigma_n^2 sigmabar_n^2 / (sigma_n^2 + sigmabar_n^2)) z],
    loss = |eps_theta(x_n, n) - (x_n - x_0) / sigma_n|^2;

sampling from x_N = x_1 down a uniform grid: x0_hat = x_n - sigma_n eps_theta(x_n, n), then the bridge
posterior x_n' = (1 - s) x0_hat + s x_n + sqrt(sigma_n'^2 (sigma_n^2 - sigma_n'^2) / sigma_n^2) z with
s = sigma_n'^2 / sigma_n^2 (z = 0 for the OT-ODE and at n' = 0). The noise term of training is dropped
with ``ot_ode`` (the official deblurring / inpainting setting, with beta_max = 1; 0.3 otherwise).
"""
from __future__ import annotations

import torch

from .calls import CallLog
from .precision import autocast


def bridge_betas(N: int = 1000, beta_max: float = 0.3) -> torch.Tensor:
    b = torch.linspace(1e-4 ** 0.5, (beta_max / N) ** 0.5, N, dtype=torch.float64) ** 2
    half = b[: N // 2]
    return torch.cat([half, half.flip(0)])


class BridgePrior:
    """eps_theta(x_n, n) of a bridge network with its schedule and an NFE counter (images in [-1, 1])."""

    def __init__(self, net: torch.nn.Module, beta_max: float = 0.3, ot_ode: bool = False, N: int = 1000):
        self.net = net.eval()
        beta = bridge_betas(N, beta_max)
        self.sigma2 = beta.cumsum(0).float()                       # sigma_n^2
        self.sigmabar2 = beta.flip(0).cumsum(0).flip(0).float()   # sigmabar_n^2
        self.beta_max, self.ot_ode, self.N = beta_max, ot_ode, N
        self.nfe = 0
        self.calls = CallLog()
        self.bf16 = False                                        # priors/precision.py

    def eps(self, x_n: torch.Tensor, n) -> torch.Tensor:
        self.nfe += x_n.shape[0]
        self.calls.record("bridge network", lambda x: self._eps(x, self.N // 2), x_n)
        return self._eps(x_n, n)

    def _eps(self, x_n, n):
        n = torch.as_tensor(n, device=x_n.device).expand(x_n.shape[0])
        with autocast(x_n, self.bf16):
            return self.net(x_n, n).sample.to(x_n.dtype)

    def q_sample(self, x0: torch.Tensor, x1: torch.Tensor, n: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        s2, sb2 = (v[n].view(-1, *([1] * (x0.ndim - 1))).to(x0) for v in (self.sigma2, self.sigmabar2))
        x_n = (sb2 * x0 + s2 * x1) / (s2 + sb2)
        return x_n if self.ot_ode else x_n + (s2 * sb2 / (s2 + sb2)).sqrt() * z

    def to(self, device) -> "BridgePrior":
        self.net.to(device)
        return self


def bridge_steps(N: int, nfe: int) -> list[int]:
    """The sampler's grid: nfe + 1 points spaced uniformly from N - 1 to 0, in decreasing order, rounded as
    the official ``space_indices`` does (the stride summed in floats: nfe = 20 has 499, not 500)."""
    if not 1 <= nfe <= N - 1:
        raise ValueError(f"nfe must be in 1..{N - 1}, got {nfe}")
    stride, cur, grid = (N - 1) / nfe, 0.0, []
    for _ in range(nfe + 1):
        grid.append(round(cur))
        cur += stride
    return sorted(set(grid), reverse=True)


def degraded_image(y: torch.Tensor, x_shape) -> torch.Tensor:
    """x_1: the measurement at the clean image's size (nearest up-sampling of a smaller y), in [-1, 1]."""
    if y.shape[-2:] != tuple(x_shape[-2:]):
        y = torch.nn.functional.interpolate(y, size=tuple(x_shape[-2:]), mode="nearest")
    return 2 * y - 1


@torch.no_grad()
def bridge_sample(prior: BridgePrior, x1: torch.Tensor, nfe: int, noise=None, correct=None) -> torch.Tensor:
    """x_0 from x_1 down the bridge; ``correct(x0_hat)`` adjusts each x0_hat (CDDB's data-consistency step);
    ``noise()`` draws z (None: the OT-ODE). Returns [-1, 1] images."""
    steps = bridge_steps(prior.N, nfe)
    s2 = prior.sigma2.to(x1)
    x = x1
    for n, n_next in zip(steps, steps[1:]):
        x0_hat = (x - s2[n].sqrt() * prior.eps(x, n)).clamp(-1, 1)
        if correct is not None:
            x0_hat = correct(x0_hat)
        s = s2[n_next] / s2[n]
        x = (1 - s) * x0_hat + s * x
        if noise is not None and not prior.ot_ode and n_next > 0:
            x = x + (s2[n_next] * (s2[n] - s2[n_next]) / s2[n]).sqrt() * noise()
    return x


def load_bridge(ck: dict) -> BridgePrior:
    """The bridge of a resolved checkpoint (sha256-checked) with the schedule it was trained with (its card)."""
    import json

    from safetensors import safe_open

    from .pixel_ddpm import load_unet
    path = ck["path"]
    net = load_unet(path, ck["sha256"])
    with safe_open(str(path), "pt") as f:
        card = json.loads((f.metadata() or {}).get("card", "{}"))
    return BridgePrior(net, card["beta_max"], card["ot_ode"])
