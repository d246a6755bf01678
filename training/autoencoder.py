"""Training the embedded autoencoder (``ipbench.priors.autoencoder``); the scaled latents of the training digits.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

from ipbench.priors.autoencoder import CONFIG, build_autoencoder, load_autoencoder
from ipbench.store.catalog import resolve

from .common import digit_net


@torch.no_grad()
def encode_training_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled latents (4000, 4, 8, 8) of the 64 x 64 training digits, and their labels."""
    from ipbench.datasets import digits
    vae, scaling = load_autoencoder(resolve("autoencoder"))
    x, labels = digits("train", 64)
    return torch.cat([vae.encode(xb * 2 - 1).latent_dist.mean for xb in x.split(250)]) * scaling, labels


def train(steps: int = 4000, batch_size: int = 16, lr: float = 1e-3, kl_weight: float = 1e-6,
          perceptual_weight: float = 0.1, seed: int = 0):
    """L1 + MSE reconstruction, SD's tiny KL weight, and the digit network's feature distance."""
    from ipbench.datasets import digits
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, _ = digits("train", 64)
    x = x * 2 - 1
    feat = digit_net().requires_grad_(False)
    vae = build_autoencoder()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    t0 = time.time()
    for step in (bar := tqdm(range(steps), desc="autoencoder")):
        xb = x[torch.randint(len(x), (batch_size,), generator=g)]
        post = vae.encode(xb).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        kl = post.kl().mean()
        perceptual = sum(F.mse_loss(a, b) for a, b in zip(feat.conv_features((rec + 1) / 2),
                                                           feat.conv_features((xb + 1) / 2)))
        loss = F.l1_loss(rec, xb) + F.mse_loss(rec, xb) + kl_weight * kl + perceptual_weight * perceptual
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        lat = torch.cat([vae.encode(xb).latent_dist.mean for xb in x.split(250)])
    card = {"steps": steps, "batch_size": batch_size, "lr": lr, "kl_weight": kl_weight,
            "perceptual_weight": perceptual_weight, "seed": seed, "wall_time_s": round(time.time() - t0, 1),
            "final_loss": round(loss.item(), 4), "scaling_factor": 1.0 / lat.std().item(),
            "parameters": sum(p.numel() for p in vae.parameters())}
    return vae, card


@torch.no_grad()
def quality(vae: AutoencoderKL, classifier, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Test reconstruction PSNR (dB, [0, 1] images) and share classified correctly."""
    from ipbench.metrics import psnr
    rec = torch.cat([vae.decode(vae.encode(xb * 2 - 1).latent_dist.mean).sample for xb in x.split(250)])
    rec = ((rec + 1) / 2).clamp(0, 1)
    return {"test_psnr": float(psnr(rec, x).mean()),
            "test_classified_correctly": (classifier(rec).argmax(1) == labels).float().mean().item()}


def main(argv=None):
    from ipbench.datasets import digits
    from ipbench.store.files import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    vae, card = train(args.steps, args.batch_size, seed=args.seed)
    card.update(quality(vae, digit_net(), *digits("test", 64)))
    save_weights(vae, args.out, metadata={"card": json.dumps(card), "config": json.dumps(CONFIG)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
