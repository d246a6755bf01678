"""Digit-text similarity (the embedded stand-in for CLIP in TReg's adaptive negation).

A small CNN maps a digit to a unit vector in the 384-d space of the frozen MiniLM sentence
embeddings, trained contrastively (CLIP's loss over the ten captions, temperature 0.07) so that
``similarity(images, prompts)`` = cosine between image and caption embeddings.
Train: ``python -m ipbench.priors.similarity --out priors/weights/similarity.safetensors``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

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


def load_similarity(name: str = "similarity") -> DigitImageEncoder:
    """The shipped digit-text similarity network (sha256-checked)."""
    from ipbench.suite.config import ROOT, checkpoint
    from .store import load_weights
    ck = checkpoint(name)
    return load_weights(DigitImageEncoder(), ROOT / ck["path"], ck["sha256"]).eval()


def train(epochs: int = 20, batch_size: int = 64, lr: float = 1e-3, temperature: float = 0.07, seed: int = 0):
    from ipbench.datasets import digits
    from ipbench.datasets.embedded import caption
    from .text import TextEncoder
    from .train_digit_net import augment
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, labels = digits("train", 32)
    captions = TextEncoder().pooled([caption(k) for k in range(10)])
    enc = DigitImageEncoder()
    opt = torch.optim.AdamW(enc.parameters(), lr=lr, weight_decay=1e-4)
    t0 = time.time()
    for _ in (bar := tqdm(range(epochs), desc="digit-text similarity")):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            logits = similarity(enc, augment(x[idx], g), captions) / temperature
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    card = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "temperature": temperature, "seed": seed,
            "wall_time_s": round(time.time() - t0, 1), "final_loss": round(loss.item(), 4)}
    return enc.eval(), captions, card


@torch.no_grad()
def caption_accuracy(enc: DigitImageEncoder, captions: torch.Tensor, x: torch.Tensor, labels: torch.Tensor) -> float:
    return (similarity(enc, x, captions).argmax(1) == labels).float().mean().item()


def main(argv=None):
    from ipbench.datasets import digits
    from .store import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    enc, captions, card = train(args.epochs, seed=args.seed)
    x, labels = digits("test", 32)
    card["caption_accuracy_32"] = caption_accuracy(enc, captions, x, labels)
    card["caption_accuracy_64"] = caption_accuracy(enc, captions, *digits("test", 64))
    save_weights(enc, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
