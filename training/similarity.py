"""Training the digit-text similarity network (``ipbench.priors.similarity``), contrastively against the
caption embeddings.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ipbench.priors.similarity import DigitImageEncoder, similarity


def train(epochs: int = 20, batch_size: int = 64, lr: float = 1e-3, temperature: float = 0.07, seed: int = 0):
    from ipbench.datasets import digits
    from ipbench.datasets.embedded import caption
    from ipbench.priors.text import TextEncoder

    from .digit_net import augment
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
    from ipbench.store.files import save_weights
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
