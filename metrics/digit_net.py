"""The embedded profile's digit network: a small CNN classifier on 32 x 32 digits.

Its penultimate features drive the embedded FID / KID, its convolutional features the embedded
LPIPS, and its predictions the quality gates of the generative priors. Images of any size in
[0, 1] are area-resized to 32 x 32 first, so the 64 x 64 digits of the latent family share it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU())


class DigitNet(nn.Module):
    """conv blocks 32 -> 64 -> 128 channels (max-pooled), a 128-d feature layer, 10 logits."""

    feature_dim = 128

    def __init__(self, widths=(32, 64, 128), feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        self.blocks = nn.ModuleList()
        c = 1
        for w in widths:
            self.blocks.append(_block(c, w))
            c = w
        self.fc = nn.Linear(c * 4 * 4, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, 10)
        self.feature_dim = feature_dim

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images of any size -> 32 x 32, centred at 0."""
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="area")
        return (x - 0.5) / 0.5

    def conv_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Activations after each convolutional block (32x32, 16x16, 8x8): the embedded LPIPS layers."""
        h, feats = self.prepare(x), []
        for i, block in enumerate(self.blocks):
            if i:
                h = F.max_pool2d(h, 2)
            h = block(h)
            feats.append(h)
        return feats

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate 128-d features: the embedded FID / KID space."""
        h = F.max_pool2d(self.conv_features(x)[-1], 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def load_digit_net(ck: dict) -> DigitNet:
    """The digit network of a resolved checkpoint (``store.catalog.resolve``), sha256-checked."""
    from ipbench.store.files import load_weights
    return load_weights(DigitNet(), ck["path"], ck["sha256"]).eval()
