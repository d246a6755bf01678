"""The embedding of UD2M's MNIST conditional-W2 metric: an MLP VAE 784-512-512-12 (``VAEfc``).

The metric embeds a digit by the encoder mean mu_z of its 28 x 28 centre crop (32 x 32 digits lose
their zero padding; an 8 x 8 measurement is zero-padded to 28 x 28, as the official code's
``CenterCrop(28)``), after min-max normalisation of the batch to [0, 1].
Train: ``python -m ipbench.priors.w2_embedding --out priors/weights/w2_embedding.safetensors``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

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


def train(epochs: int = 60, batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, seed: int = 0):
    from ipbench.datasets import digits
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, _ = digits("train", 32)
    model = VAEfc()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0 = time.time()
    for _ in (bar := tqdm(range(epochs), desc="W2 embedding")):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            xb = x[perm[i:i + batch_size]]
            mu, logvar = model.encode(xb)
            z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
            target = model.prepare(xb)
            rec = F.binary_cross_entropy(model.decode(z).flatten(1), target, reduction="sum") / len(xb)
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum() / len(xb)
            loss = rec + beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
        bar.set_postfix(rec=f"{rec.item():.1f}", kl=f"{kl.item():.1f}")
    card = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "beta": beta, "seed": seed,
            "wall_time_s": round(time.time() - t0, 1), "final_loss": round(loss.item(), 3)}
    return model.eval(), card


@torch.no_grad()
def reconstruction_accuracy(model: VAEfc, classifier, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of test digits whose reconstruction D(mu_z) the digit network classifies correctly."""
    rec = F.pad(model.decode(model.embed(x)), (2, 2, 2, 2))
    return (classifier(rec).argmax(1) == labels).float().mean().item()


def main(argv=None):
    from ipbench.datasets import digits
    from .digit_net import DigitNet
    from .store import load_weights, save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model, card = train(args.epochs, seed=args.seed)
    x, labels = digits("test", 32)
    from ipbench.suite.config import ROOT, checkpoint
    ck = checkpoint("digit_net")
    classifier = load_weights(DigitNet(), ROOT / ck["path"], ck["sha256"])
    card["reconstruction_accuracy"] = reconstruction_accuracy(model, classifier, x, labels)
    save_weights(model, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
