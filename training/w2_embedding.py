"""Training the conditional-W2 embedding (``ipbench.metrics.w2_embedding``) on the training digits.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ipbench.metrics.w2_embedding import VAEfc

from .common import digit_net


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
    from ipbench.store.files import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    model, card = train(args.epochs, seed=args.seed)
    x, labels = digits("test", 32)
    card["reconstruction_accuracy"] = reconstruction_accuracy(model, digit_net(), x, labels)
    save_weights(model, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
