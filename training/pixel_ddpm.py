"""Training the embedded pixel DDPM (``ipbench.priors.pixel_ddpm``) on the training digits.

``python -m ipbench.training.pixel_ddpm --out results/retrain/pixel_ddpm.safetensors``.
"""
from __future__ import annotations

import argparse
import json

import torch

from ipbench.priors.pixel_ddpm import architecture, build_unet, load_unet
from ipbench.priors.schedules import alpha_bar


def train(steps: int, batch_size: int = 32, lr: float = 5e-4, ema_decay: float = 0.999, seed: int = 0,
          init: str | None = None, bf16: bool = False, **arch):
    """``init``: continue from saved weights (the EMA of an earlier run, its architecture) instead of a
    fresh UNet of ``CONFIG`` with ``arch`` overrides (``layers_per_block``, ``block_out_channels``)."""
    from ipbench.datasets import digits

    from .common import train_epsilon
    torch.manual_seed(seed)
    x, _ = digits("train", 32)
    unet = load_unet(init, None).train() if init else build_unet(**arch)
    if init and any(json.dumps(unet.config[k]) != json.dumps(v) for k, v in arch.items()):
        raise ValueError(f"--init {init} has the architecture {dict((k, unet.config[k]) for k in arch)}, not {arch}")
    ema, card = train_epsilon(unet, x * 2 - 1, alpha_bar("linear"), steps=steps, batch_size=batch_size, lr=lr,
                              ema_decay=ema_decay, seed=seed, desc="pixel DDPM", bf16=bf16)
    return ema, card, architecture(unet)


def main(argv=None):
    from ipbench.store.files import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="continue from these weights")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--channels", type=lambda s: tuple(int(c) for c in s.split(",")), default=None,
                    help="block_out_channels, e.g. 32,64,64 (default: CONFIG's)")
    ap.add_argument("--layers-per-block", type=int, default=None, help="res-blocks per level (default: CONFIG's)")
    ap.add_argument("--bf16", action="store_true", help="forward pass under bfloat16 autocast (faster on CPU)")
    args = ap.parse_args(argv)
    arch = {k: v for k, v in (("block_out_channels", args.channels), ("layers_per_block", args.layers_per_block))
            if v is not None}
    ema, card, config = train(args.steps, args.batch_size, lr=args.lr, seed=args.seed, init=args.init, bf16=args.bf16, **arch)
    card["init"] = args.init
    save_weights(ema, args.out, metadata={"card": json.dumps(card), "config": json.dumps(config)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
