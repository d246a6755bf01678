"""Restore an image of one's own with a configured solver, on the profile's priors:

    python -m ipbench restore --task px_deblur_gaussian --solver diffpir --image y.png --out x.png
    python -m ipbench restore --task px_sr4 --solver ud2m --image y.png --out x.png --samples 8
    python -m ipbench restore --task px_sr4 --solver ud2m --image digit.png --out x.png --clean

The image is the measurement y of the task (its operator's output size: 8 x 8 for SR x4 of 32 x 32 digits),
or with ``--clean`` a clean image that the task degrades first (seeded noise), which also reports the PSNR.
With ``--samples K`` (K > 1) the solver draws K posterior samples: OUT is their mean, OUT_std.png their
pixel-wise standard deviation (scaled so that its maximum is white; the maximum is printed) and
OUT_samples.png the samples side by side. The solver's settings are the profile's (its row of the tables).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ipbench import physics
from .config import applies, require, select, solve_spec
from .registry import prior_kind, solver_module
from .seeding import generators
from .stages import with_prompts

CHANNELS = {"embedded_digits": 1, "paper_datasets": 3}
MODES = {1: "L", 3: "RGB"}


def describe(shape) -> str:
    c, h, w = shape[-3:]
    return f"{h} x {w} " + {1: "grayscale", 3: "RGB"}.get(c, f"{c}-channel")


def read_image(path: str | Path, expected: tuple[int, ...], what: str) -> torch.Tensor:
    """(1, C, H, W) in [0, 1]; an error naming the size and channels the task expects when the file differs."""
    from PIL import Image
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no image at {path}")
    img = Image.open(path)
    channels = {"L": 1, "I;16": 1, "RGB": 3}.get(img.mode)
    got = (channels or len(img.getbands()), img.height, img.width)
    if tuple(got) != tuple(expected):
        c, h, w = expected
        raise ValueError(f"{path.name} is a {describe(got)} image, but {what} is a {describe(expected)} image: "
                         f"convert and resize it (e.g. PIL: Image.open(f).convert('{MODES.get(c, '?')}').resize(({w}, {h})))")
    a = np.asarray(img, dtype=np.float32) / (65535.0 if img.mode == "I;16" else 255.0)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0)


def write_image(path: str | Path, x: torch.Tensor) -> None:
    """One (C, H, W) image in [0, 1] as PNG."""
    from PIL import Image
    a = (x.detach().float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0), MODES[a.shape[0]]).save(path)


def restore(task: str, solver: str, image: str, out: str, *, profile: str = "embedded", samples: int = 1,
            clean: bool = False) -> dict:
    if samples < 1:
        raise ValueError(f"--samples must be at least 1, got {samples}")
    cfg = select({"profile": profile})
    require(cfg, "tasks", task)
    require(cfg, "solvers", solver)
    if not applies(cfg, task, solver):
        runs = [s for s in cfg["solvers"] if applies(cfg, task, s)]
        raise ValueError(f"solver {solver!r} does not run on task {task!r} in profile {profile!r}; "
                         f"solvers for {task!r}: {', '.join(runs)}")
    spec = solve_spec(cfg, task, solver)
    t = spec["task_spec"]
    x_shape = (CHANNELS[cfg["data"]["kind"]], t["image_size"], t["image_size"])
    op = physics.build_operator(t["operator"], x_shape, t["sigma_y"])
    y_shape = tuple(op.A(torch.zeros(1, *x_shape, dtype=torch.float64)).shape[1:])
    x = None
    if clean:
        x = read_image(image, x_shape, f"a clean image of task {task!r} (the prior's size)")
        y = op.measure(x.double(), generators(profile, task, "restore/measure", [0])).float()
    else:
        y = read_image(image, y_shape, f"the measurement of task {task!r} (which restores {describe(x_shape)} "
                                       f"images; --clean takes one of those and degrades it first)")
    prior = None
    if prior_kind(spec["module"]):
        from ipbench.suite.priors import load_prior
        prior = load_prior(prior_kind(spec["module"]), spec["priors"], spec["precision"])
        prior.calls.progress(f"{solver} on {task}, {samples} sample(s)")
    hyper = with_prompts(spec["hyper"], torch.full((samples,), -1), task)
    gens = generators(profile, task, f"restore/{solver}", range(samples))
    start = time.perf_counter()
    x_hat = solver_module(spec["module"]).solve(y.expand(samples, *y.shape[1:]).contiguous(), op, prior,
                                                generator=gens, **hyper)
    wall = time.perf_counter() - start
    if prior is not None:
        prior.calls.close_progress()
    out = Path(out)
    mean = x_hat.mean(0)
    write_image(out, mean)
    summary = {"task": task, "solver": solver, "profile": profile, "image": str(image), "out": str(out),
               "measurement": describe(y.shape), "restoration": describe(x_shape), "samples": samples,
               "seeds": f"suite.seeding, stream restore/{solver}, images 0..{samples - 1}",
               "nfe_per_sample": getattr(prior, "nfe", 0) / samples, "wall_time_s": round(wall, 2)}
    if samples > 1:
        std = x_hat.std(0)
        scale = float(std.max()) or 1.0
        write_image(out.with_name(f"{out.stem}_std.png"), std / scale)
        write_image(out.with_name(f"{out.stem}_samples.png"), torch.cat(list(x_hat), dim=-1))
        summary["std_max"] = round(scale, 4)
    if x is not None:
        from ipbench.metrics import psnr
        summary["psnr_mean_db"] = round(float(psnr(mean[None], x)[0]), 2)
        write_image(out.with_name(f"{out.stem}_measurement.png"), y[0] if y.shape == x.shape else
                    torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="nearest")[0])
    return summary
