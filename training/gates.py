"""Quality gates of the shipped generative priors, measured on 1,000 samples or the 1,000 test digits.

``python -m ipbench.training.gates pixel_ddpm`` samples the prior, classifies the samples with the digit
network, reports the share classified with confidence >= 0.9 and the FID against the test digits
(digit-network features), and saves a sample grid under results/figures/.
"""
from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch

from ipbench.store.catalog import resolve, trained_by

from .common import digit_feature_space, digit_net


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 10) -> None:
    from torchvision.utils import save_image
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_image(images.clamp(0, 1), str(path), nrow=nrow, padding=1, pad_value=0.5)


@torch.no_grad()
def classify(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    net = digit_net()
    probs = torch.cat([net(b).softmax(1) for b in images.split(250)])
    return probs.max(1)


@torch.no_grad()
def pixel_ddpm_gate(n: int = 1000, steps: int = 100, seed: int = 0, figure: str | None = None,
                    weights: str | None = None, name: str = "pixel_ddpm") -> dict:
    """The shipped pixel DDPM ``name`` (sha256-pinned), or the file ``weights`` (a retrained candidate)."""
    from ipbench.datasets import digits
    from ipbench.metrics import fid
    from ipbench.priors.pixel_ddpm import (
        PixelDiffusionPrior,
        load_pixel_prior,
        load_unet,
    )
    from ipbench.priors.sampling import ddim_sample
    prior = PixelDiffusionPrior(load_unet(weights, None)) if weights else load_pixel_prior(resolve(name))
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    samples = torch.cat([ddim_sample(prior.eps, prior.abar, (250, 1, 32, 32), steps, 0.0, g, clip=1.0)
                         for _ in range(n // 250)])
    samples = ((samples + 1) / 2).clamp(0, 1)
    conf, _ = classify(samples)
    fs = digit_feature_space()
    x, _ = digits("test", 32)
    if figure:
        save_grid(samples[:100], figure)
    return {"n_samples": n, "sampler": f"DDIM, {steps} steps, eta 0, seed {seed}",
            "confident_share": (conf >= 0.9).float().mean().item(),
            "fid_vs_test_digits": fid(fs.features(samples), fs.features(x)),
            # reference: two class-balanced halves of the test digits (alternate digits of each class)
            "fid_test_half_vs_half": fid(fs.features(x[0::2]), fs.features(x[1::2])),
            "sampling_wall_time_s": round(time.time() - t0, 1)}


@torch.no_grad()
def latent_dm_gate(n_per_digit: int = 100, steps: int = 50, guidance: float = 3.0, seed: int = 0,
                   figure: str | None = None) -> dict:
    """Samples for 'a photo of a handwritten digit k' (DDIM, 50 steps, CFG) classified as k."""
    from ipbench.datasets.embedded import caption
    from ipbench.priors.latent import LatentDiffusionPrior
    from ipbench.priors.latent_dm import load_latent_dm
    from ipbench.priors.sampling import ddim_sample
    prior: LatentDiffusionPrior = load_latent_dm(resolve("latent_dm"))
    g = torch.Generator().manual_seed(seed)
    c_empty = prior.embed([""])
    hits, grid = [], []
    for k in range(10):
        c = prior.embed([caption(k)]).expand(n_per_digit, -1, -1)
        u = c_empty.expand(n_per_digit, -1, -1)

        def eps(z, t):
            e_c, e_u = prior.eps(z, t, c), prior.eps(z, t, u)
            return e_u + guidance * (e_c - e_u)

        z = ddim_sample(eps, prior.abar, (n_per_digit, 4, 8, 8), steps, 0.0, g)
        x = prior.decode(z).clamp(0, 1)
        conf, pred = classify(x)
        hits.append((pred == k).float())
        grid.append(x[:10])
    if figure:
        save_grid(torch.cat(grid), figure)
    return {"n_samples": 10 * n_per_digit, "sampler": f"DDIM, {steps} steps, eta 0, CFG {guidance}, seed {seed}",
            "prompted_digit_share": torch.cat(hits).mean().item(),
            "per_digit": [round(h.mean().item(), 3) for h in hits]}


@torch.no_grad()
def lcm_gate(n_per_digit: int = 100, seed: int = 0, figure: str | None = None) -> dict:
    """4- and 8-step LCMScheduler samples for each prompted digit, classified as the prompt."""
    from ipbench.datasets.embedded import caption
    from ipbench.priors.latent_dm import load_latent_dm
    from ipbench.priors.sampling import lcm_scheduler_sample
    prior = load_latent_dm(resolve("lcm"), consistency=True)
    out, grid = {}, []
    for n_steps in (4, 8):
        g = torch.Generator().manual_seed(seed)
        hits = []
        for k in range(10):
            c = prior.embed([caption(k)]).expand(n_per_digit, -1, -1)
            x = lcm_scheduler_sample(prior, c, (n_per_digit, 4, 8, 8), n_steps, g)
            _, pred = classify(x)
            hits.append((pred == k).float())
            if n_steps == 4:
                grid.append(x[:10])
        out[f"{n_steps}_step_prompted_digit_share"] = torch.cat(hits).mean().item()
        out[f"{n_steps}_step_per_digit"] = [round(h.mean().item(), 3) for h in hits]
    if figure:
        save_grid(torch.cat(grid), figure)
    return {"n_samples_per_setting": 10 * n_per_digit, "sampler": f"LCMScheduler, seed {seed}", **out}


def centre_of_mass(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, 2) ink centre (row, column) of each frame of (B, T, 1, H, W) clips in [0, 1]."""
    w = clips[:, :, 0].clamp_min(0)
    h, v = w.shape[-2:]
    rows, cols = torch.arange(h, dtype=w.dtype), torch.arange(v, dtype=w.dtype)
    mass = w.sum((-1, -2)).clamp_min(1e-6)
    return torch.stack([(w.sum(-1) * rows).sum(-1) / mass, (w.sum(-2) * cols).sum(-1) / mass], -1)


def clip_statistics(clips: torch.Tensor, labels: torch.Tensor) -> dict:
    """What the video gate measures on clips: frames classified as their clip's digit (with confidence >= 0.9),
    clips whose frames all read as one digit, the mean and spread of the ink centre's displacement per frame, and
    the mean change of that displacement from one frame to the next (its acceleration: zero on a straight path,
    large when the frames are drawn independently of each other)."""
    conf, pred = classify(clips.flatten(0, 1))
    conf, pred = conf.view(clips.shape[:2]), pred.view(clips.shape[:2])
    velocity = centre_of_mass(clips).diff(dim=1)
    speed = velocity.norm(dim=-1)
    return {"frames_read_as_prompted_digit": (pred == labels[:, None]).float().mean().item(),
            "confident_frames": (conf >= 0.9).float().mean().item(),
            "clips_one_digit_throughout": (pred == pred[:, :1]).all(1).float().mean().item(),
            "centre_speed_px_per_frame": speed.mean().item(),
            "centre_speed_sd_over_clips": speed.mean(1).std().item(),
            "centre_acceleration_px_per_frame2": velocity.diff(dim=1).norm(dim=-1).mean().item()}


@torch.no_grad()
def video_gate(name: str, n_per_digit: int | None = None, steps: int = 25, guidance: float = 3.0, seed: int = 0,
               figure: str | None = None, weights: str | None = None) -> dict:
    """Clips for 'a video of a handwritten digit k' (``n_per_digit``: 5 for the video DM, 10 for the consistency
    model): the video DM by DDIM (``steps``, CFG ``guidance``), the video consistency model by 4-step multistep
    consistency sampling. The same statistics on the 100 test clips are the
    reference (the digit network, trained on centred digits, reads 85% of their frames right). Passes when the
    share of frames read as the prompted digit is at least 90% of the test clips' and the digits move as one
    object: the mean speed of the ink centre within 0.5-1.5 times that of the test clips, and its mean acceleration
    at most half their speed (the test clips: 0.18 px / frame^2, from their bounces; frames sampled independently
    of each other jump, and fail)."""
    from ipbench.datasets.video import moving_digits, video_caption
    from ipbench.priors.sampling import consistency_sample, ddim_sample
    from ipbench.priors.video_dm import load_video_dm
    consistency = name in trained_by("ipbench.training.vcm")
    n_per_digit = n_per_digit or (10 if consistency else 5)
    ck = resolve(name) if weights is None else {**resolve(name), "path": weights, "sha256": None}   # a candidate
    prior = load_video_dm(ck, consistency=consistency)
    g = torch.Generator().manual_seed(seed)
    shape = (n_per_digit, 25, 4, 8, 8)
    clips, labels = [], []
    for k in range(10):
        c = prior.embed([video_caption(k)]).expand(n_per_digit, -1, -1)
        if consistency:
            x = consistency_sample(prior, c, shape, generator=g)
        else:
            u = prior.embed([""]).expand(n_per_digit, -1, -1)

            def eps(z, t):
                e_c, e_u = prior.eps(z, t, c), prior.eps(z, t, u)
                return e_u + guidance * (e_c - e_u)

            x = prior.decode(ddim_sample(eps, prior.abar, shape, steps, 0.0, g)).clamp(0, 1)
        clips.append(x)
        labels.append(torch.full((n_per_digit,), k))
    clips, labels = torch.cat(clips), torch.cat(labels)
    test, test_labels, _ = moving_digits("test", 100)
    measured, reference = clip_statistics(clips, labels), clip_statistics(test, test_labels)
    ratio = measured["centre_speed_px_per_frame"] / reference["centre_speed_px_per_frame"]
    smooth = measured["centre_acceleration_px_per_frame2"] <= 0.5 * reference["centre_speed_px_per_frame"]
    if figure:
        save_grid(clips[::n_per_digit, ::3].flatten(0, 1), figure, nrow=clips[:, ::3].shape[1])
    return {"n_clips": len(clips), "sampler": ("4-step consistency sampling" if consistency else
                                              f"DDIM, {steps} steps, eta 0, CFG {guidance}") + f", seed {seed}",
            "samples": measured, "test_clips": reference, "speed_ratio": ratio, "smooth_motion": smooth,
            "passed": (measured["frames_read_as_prompted_digit"] >= 0.9 * reference["frames_read_as_prompted_digit"]
                       and 0.5 <= ratio <= 1.5 and smooth)}


PIXEL_DDPMS = trained_by("ipbench.training.pixel_ddpm")
VIDEO_PRIORS = trained_by("ipbench.training.video_dm") + trained_by("ipbench.training.vcm")
GATES = {**{name: functools.partial(pixel_ddpm_gate, name=name) for name in PIXEL_DDPMS},
         "latent_dm": latent_dm_gate, "lcm": lcm_gate,
         **{name: functools.partial(video_gate, name) for name in VIDEO_PRIORS}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("prior", choices=sorted(GATES))
    ap.add_argument("--figure", default=None)
    ap.add_argument("--weights", default=None,
                    help="pixel DDPMs and video priors: gate this file (a candidate) instead of the shipped one")
    ap.add_argument("--n-per-digit", type=int, default=None, help="video priors: clips per digit (a quick look)")
    args = ap.parse_args(argv)
    if args.weights and args.prior not in PIXEL_DDPMS + VIDEO_PRIORS:
        ap.error("--weights is for the pixel DDPMs and the video priors")
    if args.n_per_digit and args.prior not in VIDEO_PRIORS:
        ap.error("--n-per-digit is for the video priors")
    kwargs = {"weights": args.weights} if args.weights else {}
    if args.n_per_digit:
        kwargs["n_per_digit"] = args.n_per_digit
    print(json.dumps(GATES[args.prior](figure=args.figure, **kwargs), indent=1))


if __name__ == "__main__":
    main()
