"""A Gaussian prior x_0 ~ N(mu, Sigma) whose noise predictor is exact: the oracle of the sampler tests.

    E[eps | x_t] = sqrt(1 - abar_t) (abar_t Sigma + (1 - abar_t) I)^{-1} (x_t - sqrt(abar_t) mu),

and with y = A x + sigma_y n on the [0, 1] image x = (x_0 + 1) / 2 the posterior is Gaussian with
covariance C = (Sigma_01^-1 + A^T A / sigma_y^2)^-1 and mean C (Sigma_01^-1 mu_01 + A^T y / sigma_y^2). It meets the pixel-diffusion protocol (``eps``, ``abar``,
``nfe``) on images in [-1, 1] of a given item shape.
"""
from __future__ import annotations

import torch

from .schedules import alpha_bar


class GaussianPrior:
    def __init__(self, mu: torch.Tensor, Sigma: torch.Tensor, item_shape, schedule: str = "linear"):
        self.mu, self.Sigma = mu.double(), Sigma.double()
        self.item_shape = tuple(item_shape)
        self.abar = alpha_bar(schedule).float()
        self.nfe = 0

    def to(self, device) -> "GaussianPrior":
        return self

    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        self.nfe += x_t.shape[0]
        a = alpha_bar()[int(t)]
        n = self.mu.numel()
        cov_t = a * self.Sigma + (1 - a) * torch.eye(n, dtype=torch.float64)
        r = x_t.reshape(len(x_t), -1).double() - a.sqrt() * self.mu
        return ((1 - a).sqrt() * torch.linalg.solve(cov_t, r.T).T).reshape(x_t.shape).to(x_t.dtype)

    def posterior(self, A: torch.Tensor, y: torch.Tensor, sigma_y: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, covariance) of the [0, 1] image x = (x_0 + 1) / 2 given y = A x + sigma_y n, for a
        dense A and one flattened measurement y (the units of the solvers' inputs and outputs)."""
        mu, Sigma = (self.mu + 1) / 2, self.Sigma / 4
        A = A.double()
        C = torch.linalg.inv(torch.linalg.inv(Sigma) + A.T @ A / sigma_y**2)
        return C @ (torch.linalg.solve(Sigma, mu) + A.T @ y.double() / sigma_y**2), C
