"""Train the digit network on the 4,000 training digits (seeded; ``python -m ipbench.training.digit_net``)."""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ipbench.datasets import digits
from ipbench.metrics.digit_net import DigitNet
from ipbench.store.files import save_weights


def augment(x: torch.Tensor, g: torch.Generator, max_shift: int = 2, max_angle: float = 0.2) -> torch.Tensor:
    """Random small rotations and integer shifts (affine grid, zero padding)."""
    B = x.shape[0]
    ang = (torch.rand(B, generator=g) * 2 - 1) * max_angle
    shift = (torch.randint(-max_shift, max_shift + 1, (B, 2), generator=g).float() * 2 / x.shape[-1])
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = ang.cos(), -ang.sin(), ang.sin(), ang.cos()
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model: DigitNet, x: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(xb).argmax(1) for xb in x.split(500)])
    return (pred == labels).float().mean().item()


@torch.no_grad()
def feature_rms(model: DigitNet, x: torch.Tensor) -> float:
    """RMS of the penultimate features over the training digits (the metrics divide by it)."""
    model.eval()
    f = torch.cat([model.features(xb) for xb in x.split(500)])
    return f.pow(2).mean().sqrt().item()


def train(epochs: int = 30, batch_size: int = 64, lr: float = 2e-3, seed: int = 0) -> tuple[DigitNet, dict]:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, labels = digits("train", 32)
    x_test, labels_test = digits("test", 32)
    model = DigitNet()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t0 = time.time()
    bar = tqdm(total=steps, desc="digit net")
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(len(x) // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(model(augment(x[idx], g)), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    card = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "steps": steps,
            "wall_time_s": round(time.time() - t0, 1), "final_loss": round(loss.item(), 4),
            "test_accuracy": accuracy(model, x_test, labels_test), "feature_rms": feature_rms(model, x)}
    return model, card


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    model, card = train(epochs=args.epochs, seed=args.seed)
    save_weights(model, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
