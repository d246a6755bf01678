"""Latent consistency distillation of the embedded latent DM (Luo et al. 2023, LCM, Algorithm 1).

Teacher: the latent DM with classifier-free guidance w, stepped by DDIM over a skipping-step grid
(k = 20: t_n in {19, 39, ..., 999}). Student f_theta (initialised from the teacher) and its EMA
target f_theta- use the LCM boundary parametrisation (``priors.latent.consistency_output``):

    z_{t_n - k} = DDIM(z_{t_n}; eps_u + w (eps_c - eps_u)),
    loss = huber(f_theta(z_{t_n}, t_n, c), f_theta-(z_{t_n - k}, t_n - k, c)).

For clips, ``temporal_weight`` lambda adds lambda huber(D_tau e) on the frame-to-frame differences of that error
e (the suite's own term, not LCM's: it weights the error's high temporal frequencies up, which a per-element loss
on 8 x 8 latents treats as small although they decode to a digit that jitters).

Sampling then uses diffusers' ``LCMScheduler`` (4 or 8 steps). There is no w-embedding: the
guidance is fixed at distillation time, as LCM-LoRA does.
Train: ``python -m ipbench.training.lcm --out priors/weights/lcm.safetensors``.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import torch
from tqdm import tqdm

from ipbench.priors.diffusion import ddim_step, tweedie
from ipbench.priors.latent import consistency_output
from ipbench.priors.schedules import alpha_bar

from .common import train_step


def consistency_fn(unet, z, t, c, abar):
    return consistency_output(z, tweedie(z, unet(z, t, encoder_hidden_states=c).sample, abar[t]), t)


def teacher_solve(teacher, z, t, c, c_empty, w: float, abar, skip: int, m: int = 1):
    """(z_{t - m k}, t - m k): m DDIM steps of k down from (z, t), on the teacher's guided noise
    eps_u + w (eps_c - eps_u); timesteps stop at 0."""
    for _ in range(m):
        s, t = t, (t - skip).clamp_min(0)
        e_c = teacher(z, s, encoder_hidden_states=c).sample
        e_u = teacher(z, s, encoder_hidden_states=c_empty).sample
        e_w = e_u + w * (e_c - e_u)
        z = ddim_step(tweedie(z, e_w, abar[s]), e_w, abar[s], abar[t])
    return z, t


def pseudo_huber(e: torch.Tensor, c: float) -> torch.Tensor:
    """sqrt(mean e^2 + c^2) - c per sample, averaged over the batch."""
    return ((e**2).flatten(1).mean(1) + c**2).sqrt().mean() - c


def distill(teacher, latents, labels, steps: int = 3000, batch_size: int = 64, lr: float = 2e-4,
            w: float = 3.0, skip: int = 20, ema_decay: float = 0.95, huber_c: float = 1e-3, seed: int = 0,
            init=None, prompts: list[str] | None = None, max_seconds: float | None = None, trainable=None,
            snapshot=None, snapshot_every: int = 0, temporal_weight: float = 0.0, teacher_steps: int = 1):
    """``init``: a student to continue from (an earlier distillation) instead of the teacher's copy.
    ``trainable``: a test on parameter names (e.g. the motion modules only); the others stay frozen.
    ``prompts``: the ten captions, the generic prompt and the empty one (default: the image digits'); latents
    may be images (N, c, h, w) or clips (N, T, c, h, w). ``max_seconds``: stop after the step that crosses it
    (the card's ``steps`` is the number done). ``snapshot(step, target)`` every ``snapshot_every`` steps: to gate a
    long run while it goes on. ``temporal_weight``: clips only, the weight of the frame-difference term.
    ``teacher_steps`` m: the target is taken m skips down (t_n - m k), the teacher stepping there in m DDIM steps
    of k (LCM: m = 1); fewer links from t = 999 to the boundary, each as accurate as LCM's."""
    from ipbench.datasets.embedded import caption
    from ipbench.priors.latent_dm import GENERIC_PROMPT
    from ipbench.priors.text import TextEncoder
    if temporal_weight and latents.ndim != 5:
        raise ValueError("temporal_weight is for clips (N, T, c, h, w)")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    table = TextEncoder().tokens(prompts or [caption(k) for k in range(10)] + [GENERIC_PROMPT, ""])
    abar = alpha_bar("scaled_linear").float()
    grid = torch.arange(1, 1000 // skip + 1) * skip - 1                     # 19, 39, ..., 999
    teacher = teacher.eval().requires_grad_(False)
    student = copy.deepcopy(init if init is not None else teacher).train()
    for name, p in student.named_parameters():
        p.requires_grad_(trainable is None or trainable(name))
    target = copy.deepcopy(init if init is not None else teacher).eval().requires_grad_(False)
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    t0, losses = time.time(), []
    for step in (bar := tqdm(range(steps), desc="LCM distillation")):
        if max_seconds is not None and time.time() - t0 > max_seconds:
            steps = step
            break
        idx = torch.randint(len(latents), (batch_size,), generator=g)
        z0, k = latents[idx], labels[idx].clone()
        k[torch.rand(batch_size, generator=g) < 0.1] = 10                  # the generic prompt too
        c, c_empty = table[k], table[torch.full_like(k, 11)]
        t = grid[torch.randint(len(grid), (batch_size,), generator=g)]
        eps = torch.randn(z0.shape, generator=g)
        a = abar[t].view(-1, *([1] * (z0.ndim - 1)))
        z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
        with torch.no_grad():
            z_prev, t_prev = teacher_solve(teacher, z_t, t, c, c_empty, w, abar, skip, teacher_steps)
            tgt = consistency_fn(target, z_prev, t_prev, c, abar)
        e = consistency_fn(student, z_t, t, c, abar) - tgt
        loss = pseudo_huber(e, huber_c)
        if temporal_weight:
            loss = loss + temporal_weight * pseudo_huber(e.diff(dim=1), huber_c)
        train_step(opt, loss, student, target, ema_decay, losses, bar, step, window=100, digits=5,
                   snapshot=snapshot, snapshot_every=snapshot_every)
    card = {"steps": steps, "batch_size": batch_size, "lr": lr, "guidance_w": w, "skip": skip,
            "ema_decay": ema_decay, "huber_c": huber_c, "seed": seed, "wall_time_s": round(time.time() - t0, 1),
            "final_loss_avg100": sum(losses[-100:]) / len(losses[-100:]),
            "trained_parameters": sum(p.numel() for p in student.parameters() if p.requires_grad)}
    if temporal_weight:
        card["temporal_weight"] = temporal_weight      # the loss's frame-difference term (clips)
    if teacher_steps > 1:
        card["teacher_steps"] = teacher_steps          # DDIM steps of k per target (LCM: 1)
    return target, card


def main(argv=None):
    from ipbench.priors.latent_dm import build_unet
    from ipbench.store.catalog import resolve
    from ipbench.store.files import load_weights, save_weights

    from .autoencoder import encode_training_digits
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="continue from these weights (an earlier distillation)")
    args = ap.parse_args(argv)
    ck = resolve("latent_dm")
    teacher = load_weights(build_unet(), ck["path"], ck["sha256"])
    init = load_weights(build_unet(), args.init, None) if args.init else None
    z, labels = encode_training_digits()
    student, card = distill(teacher, z, labels, args.steps, seed=args.seed, init=init)
    card["init"] = args.init
    save_weights(student, args.out, metadata={"card": json.dumps(card)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
