"""Pick a solver's hyperparameter on *training* digits, never on the test images the tables score.

``python -m ipbench tune --profile embedded --task deblur_gaussian --solver latino --grid delta=0.1,0.3,1``
measures the first ``n`` training digits with the task's operator (noise seeded with role
``tune``), runs the solver once per grid value (the configured hyper otherwise; several ``--grid``
options span their Cartesian product) and reports the mean PSNR; the result, with the chosen value,
goes to ``config/tuning/<task>_<solver>.json`` (committed). The choices the config records were made
this way.
"""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np

from ipbench import physics
from ipbench.datasets import digits
from ipbench.metrics import psnr
from . import io
from .config import checkpoint, select, solve_spec
from .registry import prior_keys, prior_kind, solver_module
from .seeding import generators
from .stages import with_prompts


def parse_grid(text: str) -> tuple[str, list]:
    key, _, values = text.partition("=")
    if not key or not values:
        raise ValueError(f"--grid must look like name=v1,v2,...; got {text!r}")
    def value(v: str):
        if v[:1] in "[{\"" or v in ("true", "false"):
            return json.loads(v)
        return int(v) if v.lstrip("+-").isdigit() else float(v)             # n_iter=2 stays an integer
    return key, [value(v) for v in values.split(",")]


def tune(profile: str, task: str, solver: str, grid: str | list[str], n: int = 20, out_dir: str = "config/tuning",
         links: dict | None = None) -> dict:
    """``links``: {name: factor}, hyperparameters set to factor x the grid value (ADMM's rho = 50 lam)."""
    links = links or {}
    cfg = select({"profile": profile})
    if cfg["data"]["kind"] != "embedded_digits":
        raise ValueError("tuning reads the embedded training digits; the paper profile keeps the papers' values")
    spec = solve_spec(cfg, task, solver)
    axes = [parse_grid(g) for g in ([grid] if isinstance(grid, str) else grid)]
    keys = [k for k, _ in axes]
    if len(set(keys)) < len(keys):
        raise ValueError(f"a hyperparameter is gridded twice: {keys}")
    if spec["task_spec"].get("family") == "video":            # moving-digit training clips
        from ipbench.datasets.video import moving_digits
        x, labels, _ = moving_digits("train", n, spec["task_spec"]["frames"])
    else:
        x, labels = digits("train", spec["task_spec"]["image_size"], n)
    op = physics.build_operator(spec["task_spec"]["operator"], x.shape[1:], spec["task_spec"]["sigma_y"])
    index = np.arange(n)
    y = op.measure(x.double(), generators(profile, task, "tune", index)).float()
    module = solver_module(spec["module"])
    kind, prior = prior_kind(spec["module"]), None
    if kind:
        from ipbench.suite.priors import load_prior
        prior = load_prior(kind, spec["priors"])
    rows, n_points = [], int(np.prod([len(v) for _, v in axes]))
    linked = lambda point: {k: f * point[keys[0]] for k, f in links.items()}      # links follow the first axis
    for values in itertools.product(*(v for _, v in axes)):
        point = dict(zip(keys, values))
        hyper = with_prompts({**spec["hyper"], **point, **linked(point)}, labels, task)
        start = time.perf_counter()
        x_hat = module.solve(y, op, prior, generator=generators(profile, task, f"tune/{solver}", index), **hyper)
        rows.append({**point, "psnr": float(psnr(x_hat, x).mean())})
        shown = " ".join(f"{k}={v}" for k, v in point.items())
        print(f"{task} {solver} {shown}: PSNR {rows[-1]['psnr']:.2f} dB on {n} training digits "
              f"({time.perf_counter() - start:.1f} s, point {len(rows)} of {n_points})", flush=True)
    best = max(rows, key=lambda r: r["psnr"])
    chosen = {k: best[k] for k in keys}
    result = {"task": task, "solver": solver, "profile": profile, "n_training_digits": n, "criterion": "mean PSNR",
              "grid": rows, "chosen": {**chosen, **linked(chosen)},
              "fixed": {k: v for k, v in spec["hyper"].items() if k not in keys and k not in links}}
    if links:
        result["links"] = {k: f"{f} x {keys[0]}" for k, f in links.items()}
    if prior is not None:       # the choice holds for this prior: a new one is tuned again
        names = [spec["priors"][key] for key in prior_keys(kind)]
        result["prior"] = {"checkpoint": ", ".join(names), "sha256": ", ".join(checkpoint(n)["sha256"] for n in names)}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    io.write_json(f"{out_dir}/{task}_{solver}.json", result)
    return result
