"""Training the embedded video latent DM (``ipbench.priors.video_dm``): the image latent DM inflated with
motion modules, fine-tuned as a whole on the autoencoder's latents of moving-digit training clips.
"""
from __future__ import annotations

import argparse
import json

import torch

from ipbench.priors.schedules import alpha_bar
from ipbench.priors.video_dm import MOTION, build_video_unet


@torch.no_grad()
def encode_training_clips(n: int, batch: int = 500, cache: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled latents (n, T, 4, 8, 8) of the first n moving-digit training clips, and their labels; ``cache``: a
    file that keeps them for the next run (read if it holds n clips)."""
    from pathlib import Path

    from safetensors.torch import save_file

    from ipbench.store.files import read_tensors
    if cache and Path(cache).exists():
        saved = read_tensors(cache)
        if len(saved["latents"]) == n:
            return saved["latents"], saved["labels"]
    from ipbench.datasets.video import moving_digits
    from ipbench.priors.autoencoder import load_autoencoder
    from ipbench.store.catalog import resolve
    vae, scaling = load_autoencoder(resolve("autoencoder"))
    out, labels = [], []
    for start in range(0, n, batch // 25 or 1):
        x, lab, _ = moving_digits("train", min(batch // 25, n - start), start=start)
        z = vae.encode(x.flatten(0, 1) * 2 - 1).latent_dist.mean * scaling
        out.append(z.view(*x.shape[:2], *z.shape[1:]))
        labels.append(lab)
    out, labels = torch.cat(out), torch.cat(labels)
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        save_file({"latents": out.contiguous(), "labels": labels}, cache)
    return out, labels


def train(latents, labels, steps: int, batch_size: int = 8, lr: float = 2e-4, p_generic: float = 0.1,
          p_empty: float = 0.1, ema_decay: float = 0.995, warmup: int = 100, motion_only: bool = True,
          max_seconds: float | None = None, seed: int = 0, init: str | None = None, snapshot=None,
          snapshot_every: int = 0, t_power: float = 1.0):
    """``motion_only``: train the motion modules alone, the image U-Net's layers frozen (AnimateDiff's recipe;
    a third cheaper per step). Float32: bf16 autocast measured slower on this network at 25 frames."""
    from ipbench.datasets.video import GENERIC_VIDEO_PROMPT, video_caption
    from ipbench.priors.latent_dm import build_unet
    from ipbench.priors.text import TextEncoder
    from ipbench.store.catalog import resolve
    from ipbench.store.files import load_weights

    from .common import train_epsilon
    torch.manual_seed(seed)
    table = TextEncoder().tokens([video_caption(k) for k in range(10)] + [GENERIC_VIDEO_PROMPT, ""])
    ck = resolve("latent_dm")
    unet = build_video_unet(load_weights(build_unet(), ck["path"], ck["sha256"]))
    if init:                                  # continue an earlier run (its EMA weights)
        load_weights(unet, init, None).train()
    for name, p in unet.named_parameters():
        p.requires_grad_(not motion_only or "motion_modules" in name)

    def condition(idx, g):
        k, u = labels[idx].clone(), torch.rand(len(idx), generator=g)
        k[u < p_generic] = 10
        k[(u >= p_generic) & (u < p_generic + p_empty)] = 11
        return {"encoder_hidden_states": table[k]}

    ema, card = train_epsilon(unet, latents, alpha_bar("scaled_linear"), steps=steps, batch_size=batch_size, lr=lr,
                              ema_decay=ema_decay, seed=seed, desc="video DM", condition=condition, warmup=warmup,
                              max_seconds=max_seconds, snapshot=snapshot, snapshot_every=snapshot_every,
                              t_power=t_power)
    return ema, {**card, "p_generic": p_generic, "p_empty": p_empty, "init": init or "latent_dm", "clips": len(latents),
                 "motion_only": motion_only}


def main(argv=None):
    from ipbench.store.files import save_weights

    from .common import snapshot_writer
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--clips", type=int, default=4000, help="moving-digit training clips (one per training digit)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=None, help="stop early at this wall time (see the card)")
    ap.add_argument("--init", default=None, help="continue from these weights (an earlier run)")
    ap.add_argument("--latents-cache", default=None, help="keep the encoded training clips in this file")
    ap.add_argument("--snapshot-every", type=int, default=0,
                    help="also write the EMA weights so far to OUT.stepN.safetensors every this many steps")
    ap.add_argument("--t-power", type=float, default=1.0,
                    help="timesteps drawn as T u^(1/p): 1 uniform, 2 weighted toward high noise (see train_epsilon)")
    ap.add_argument("--whole", action="store_true", help="train every layer, not only the motion modules")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    z, labels = encode_training_clips(args.clips, cache=args.latents_cache)
    unet, card = train(z, labels, args.steps, batch_size=args.batch_size, seed=args.seed, init=args.init,
                       max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                       snapshot=snapshot_writer(args.out, {"motion": json.dumps(MOTION)}),
                       snapshot_every=args.snapshot_every, t_power=args.t_power,
                       motion_only=not args.whole)
    save_weights(unet, args.out, metadata={"card": json.dumps(card), "motion": json.dumps(MOTION)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
