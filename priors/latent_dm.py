"""The embedded text-conditioned latent diffusion model (mirrors Stable Diffusion).

diffusers ``UNet2DConditionModel`` on the autoencoder's 4 x 8 x 8 latents, cross-attending to
the frozen all-MiniLM-L6-v2 token embeddings of the caption, with Stable Diffusion's
scaled-linear schedule (beta 0.00085 .. 0.012, T = 1000) and epsilon prediction. Captions are
replaced by the generic prompt "a photo of a handwritten digit" 10% of the time and by the empty
prompt 10% of the time (classifier-free guidance).
Train: ``python -m ipbench.priors.latent_dm --out priors/weights/latent_dm.safetensors``.
"""
from __future__ import annotations

import argparse
import json

import torch
from diffusers import UNet2DConditionModel

from .schedules import alpha_bar
from .text import DIM

GENERIC_PROMPT = "a photo of a handwritten digit"
CONFIG = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
              block_out_channels=(64, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=DIM,
              attention_head_dim=8, norm_num_groups=16)


def build_unet(**overrides) -> UNet2DConditionModel:
    return UNet2DConditionModel(**{**CONFIG, **overrides})


def load_latent_dm(name: str = "latent_dm"):
    """The shipped latent DM ('latent_dm') or its consistency distillation ('lcm') behind the latent
    protocol, with the shipped autoencoder; every file sha256-checked."""
    from ipbench.suite.config import ROOT, checkpoint
    from .autoencoder import load_autoencoder
    from .latent import ConsistencyPrior, LatentDiffusionPrior
    from .store import load_weights
    vae, scaling = load_autoencoder()
    ck = checkpoint(name)
    unet = load_weights(build_unet(), ROOT / ck["path"], ck["sha256"])
    from .text import TextEncoder
    return (ConsistencyPrior if name == "lcm" else LatentDiffusionPrior)(vae, unet, scaling, TextEncoder())


def train(latents: torch.Tensor, labels: torch.Tensor, steps: int = 6000, batch_size: int = 64, lr: float = 5e-4,
          p_generic: float = 0.1, p_empty: float = 0.1, ema_decay: float = 0.999, seed: int = 0):
    from ipbench.datasets.embedded import caption
    from .text import TextEncoder
    from .training import train_epsilon
    torch.manual_seed(seed)
    table = TextEncoder().tokens([caption(k) for k in range(10)] + [GENERIC_PROMPT, ""])  # (12, L, 384)

    def condition(idx, g):
        k, u = labels[idx].clone(), torch.rand(len(idx), generator=g)
        k[u < p_generic] = 10
        k[(u >= p_generic) & (u < p_generic + p_empty)] = 11
        return {"encoder_hidden_states": table[k]}

    unet, card = train_epsilon(build_unet(), latents, alpha_bar("scaled_linear"), steps=steps, batch_size=batch_size,
                               lr=lr, ema_decay=ema_decay, seed=seed, desc="latent DM", condition=condition)
    return unet, {**card, "p_generic": p_generic, "p_empty": p_empty}


def main(argv=None):
    from .autoencoder import encode_training_digits
    from .store import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    z, labels = encode_training_digits()
    unet, card = train(z, labels, args.steps, seed=args.seed)
    save_weights(unet, args.out, metadata={"card": json.dumps(card), "config": json.dumps(CONFIG)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
