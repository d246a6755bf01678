"""The embedded latent family's autoencoder: diffusers ``AutoencoderKL`` with factor 8 and 4 latent
channels (as Stable Diffusion's), on 64 x 64 digits: x in [-1, 1] (1 x 64 x 64) <-> z (4 x 8 x 8).

``encode`` returns the posterior mean times ``scaling_factor`` (1 / std of the training latents,
SD's 0.18215 convention); ``decode`` inverts the scaling.
Train: ``python -m ipbench.priors.autoencoder --out priors/weights/autoencoder.safetensors``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from tqdm import tqdm

# sized for 2 CPU cores: the 64 x 64 level, the costliest, has 16 channels
CONFIG = dict(in_channels=1, out_channels=1, latent_channels=4, sample_size=64, layers_per_block=1,
              block_out_channels=(16, 32, 64, 64),
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              norm_num_groups=8)


def build_autoencoder(**overrides) -> AutoencoderKL:
    return AutoencoderKL(**{**CONFIG, **overrides})


def load_autoencoder(name: str = "autoencoder") -> tuple[AutoencoderKL, float]:
    """The shipped autoencoder (sha256-checked) and its latent scaling factor."""
    from ipbench.suite.config import ROOT, checkpoint
    from .store import load_weights
    ck = checkpoint(name)
    return load_weights(build_autoencoder(), ROOT / ck["path"], ck["sha256"]), float(ck["scaling_factor"])


@torch.no_grad()
def encode_training_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled latents (4000, 4, 8, 8) of the 64 x 64 training digits, and their labels."""
    from ipbench.datasets import digits
    vae, scaling = load_autoencoder()
    x, labels = digits("train", 64)
    return torch.cat([vae.encode(xb * 2 - 1).latent_dist.mean for xb in x.split(250)]) * scaling, labels


def train(steps: int = 4000, batch_size: int = 16, lr: float = 1e-3, kl_weight: float = 1e-6,
          perceptual_weight: float = 0.1, seed: int = 0):
    """L1 + MSE reconstruction, SD's tiny KL weight, and the digit network's feature distance."""
    from ipbench.datasets import digits
    from ipbench.suite.config import ROOT, checkpoint
    from .digit_net import DigitNet
    from .store import load_weights
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, _ = digits("train", 64)
    x = x * 2 - 1
    ck = checkpoint("digit_net")
    feat = load_weights(DigitNet(), ROOT / ck["path"], ck["sha256"]).requires_grad_(False)
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
    from ipbench.suite.config import ROOT, checkpoint
    from .digit_net import DigitNet
    from .store import load_weights, save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    vae, card = train(args.steps, args.batch_size, seed=args.seed)
    ck = checkpoint("digit_net")
    card.update(quality(vae, load_weights(DigitNet(), ROOT / ck["path"], ck["sha256"]), *digits("test", 64)))
    save_weights(vae, args.out, metadata={"card": json.dumps(card), "config": json.dumps(CONFIG)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
