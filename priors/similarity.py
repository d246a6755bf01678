"""Digit-text similarity (the embedded stand-in for CLIP in TReg's adaptive negation).

A small CNN maps a digit to a unit vector in the 384-d space of the frozen MiniLM sentence
embeddings, trained contrastively (CLIP's loss over the ten captions, temperature 0.07) so that
``similarity(images, prompts)`` = cosine between image and caption embeddings.
Train: ``python -m ipbench.training.similarity --out priors/weights/similarity.safetensors``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .text import DIM


class DigitImageEncoder(nn.Module):
    def __init__(self, dim: int = DIM):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(512, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] digits of any size -> unit vectors in the MiniLM space."""
        if x.shape[-1] != 32:
            x = F.interpolate(x, size=(32, 32), mode="area")
        return F.normalize(self.net((x - 0.5) / 0.5), dim=-1)


def similarity(encoder: DigitImageEncoder, images: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
    """(B, P) cosine similarities between images and unit-norm prompt embeddings."""
    return encoder(images) @ text_embeddings.T


def load_similarity(ck: dict) -> DigitImageEncoder:
    """The digit-text similarity network of a resolved checkpoint (sha256-checked)."""
    from ipbench.store.files import load_weights
    return load_weights(DigitImageEncoder(), ck["path"], ck["sha256"]).eval()
