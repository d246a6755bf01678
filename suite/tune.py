"""Pick a solver's hyperparameter on *training* digits, never on the test images the tables score.

``python -m suite tune --profile embedded --task deblur_gaussian --solver latino --grid delta=0.1,0.3,1``
measures the first ``n`` training digits with the task's operator (noise seeded with role
``tune``), runs the solver once per grid value (the configured hyper otherwise) and reports the
mean PSNR; the result, with the chosen value, goes to ``config/tuning/<task>_<solver>.json`` (committed).
The choices the config records were made this way.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import physics
from datasets import digits
from metrics import psnr
from . import io
from .config import select, solve_spec
from .registry import solver_module
from .seeding import generators
from .stages import with_prompts


def parse_grid(text: str) -> tuple[str, list]:
    key, _, values = text.partition("=")
    if not key or not values:
        raise ValueError(f"--grid must look like name=v1,v2,...; got {text!r}")
    return key, [json.loads(v) if v[:1] in "[{\"" or v in ("true", "false") else float(v) for v in values.split(",")]


def tune(profile: str, task: str, solver: str, grid: str, n: int = 20, out_dir: str = "config/tuning",
         links: dict | None = None) -> dict:
    """``links``: {name: factor}, hyperparameters set to factor x the grid value (ADMM's rho = 50 lam)."""
    links = links or {}
    cfg = select({"profile": profile})
    if cfg["data"]["kind"] != "embedded_digits":
        raise ValueError("tuning reads the embedded training digits; the paper profile keeps the papers' values")
    spec = solve_spec(cfg, task, solver)
    key, values = parse_grid(grid)
    x, labels = digits("train", spec["task_spec"]["image_size"], n)
    op = physics.build_operator(spec["task_spec"]["operator"], x.shape[1:], spec["task_spec"]["sigma_y"])
    index = np.arange(n)
    y = op.measure(x.double(), generators(profile, task, "tune", index)).float()
    module = solver_module(spec["module"])
    prior = None
    if getattr(module, "USES_PRIOR", False):
        from priors.registry import load_prior
        prior = load_prior(module.USES_PRIOR, spec["priors"])
    rows = []
    for v in values:
        hyper = with_prompts({**spec["hyper"], key: v, **{k: f * v for k, f in links.items()}}, labels, task)
        x_hat = module.solve(y, op, prior, generator=generators(profile, task, f"tune/{solver}", index), **hyper)
        rows.append({key: v, "psnr": float(psnr(x_hat, x).mean())})
        print(f"{task} {solver} {key}={v}: PSNR {rows[-1]['psnr']:.2f} dB on {n} training digits", flush=True)
    best = max(rows, key=lambda r: r["psnr"])
    result = {"task": task, "solver": solver, "profile": profile, "n_training_digits": n, "criterion": "mean PSNR",
              "grid": rows, "chosen": {key: best[key], **{k: f * best[key] for k, f in links.items()}}, "fixed": {k: v for k, v in spec["hyper"].items() if k != key}}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    io.write_json(f"{out_dir}/{task}_{solver}.json", result)
    return result
