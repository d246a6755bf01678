"""The embedding of UD2M's MNIST conditional-W2 metric: an MLP VAE 784-512-512-12 (``VAEfc``).

The metric embeds a digit by the encoder mean mu_z of its 28 x 28 centre crop (32 x 32 digits lose
their zero padding; an 8 x 8 measurement is zero-padded to 28 x 28, as the official code's
``CenterCrop(28)``), after min-max normalisation of the batch to [0, 1].
Train: ``python -m ipbench.training.w2_embedding --out priors/weights/w2_embedding.safetensors``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT = 12


class VAEfc(nn.Module):
    def __init__(self, hidden: int = 512, latent: int = LATENT):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.mu, self.logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 784))

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) -> (N, 784): centre crop / zero pad to 28 x 28, batch min-max to [0, 1]."""
        S = x.shape[-1]
        x = x[..., (S - 28) // 2:(S - 28) // 2 + 28, (S - 28) // 2:(S - 28) // 2 + 28] if S >= 28 else \
            F.pad(x, ((28 - S) // 2, 28 - S - (28 - S) // 2) * 2)
        lo, hi = x.min(), x.max()
        return ((x - lo) / (hi - lo).clamp_min(1e-8)).flatten(1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(self.prepare(x))
        return self.mu(h), self.logvar(h)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """mu_z: the 12-d space of the conditional W2."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z)).view(-1, 1, 28, 28)
