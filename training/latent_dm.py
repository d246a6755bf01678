"""Training the embedded latent DM (``ipbench.priors.latent_dm``) on the autoencoder's latents of the training
digits, conditioned on their captions.
"""
from __future__ import annotations

import argparse
import json

import torch

from ipbench.priors.latent_dm import CONFIG, GENERIC_PROMPT, build_unet
from ipbench.priors.schedules import alpha_bar


def train(latents: torch.Tensor, labels: torch.Tensor, steps: int = 6000, batch_size: int = 64, lr: float = 5e-4,
          p_generic: float = 0.1, p_empty: float = 0.1, ema_decay: float = 0.999, seed: int = 0):
    from ipbench.datasets.embedded import caption
    from ipbench.priors.text import TextEncoder

    from .common import train_epsilon
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
    from ipbench.store.files import save_weights

    from .autoencoder import encode_training_digits
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
