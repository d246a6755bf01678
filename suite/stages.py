"""The stages of the DAG, one function each: degrade -> solve -> score -> table.

Each takes the resolved ``spec`` of its job (a dict built by the Snakefile from the config and
stored in every record) and explicit input / output paths, and writes its outputs atomically.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone

import numpy as np
import torch

import physics
from datasets import caption, digits
from metrics import fid, kid, psnr, ssim
from metrics.accounting import git_revision, stopwatch
from metrics.features import feature_space
from report.records import SCHEMA_ID, validate_record
from . import io
from .registry import solver_module
from .seeding import generators, seed_for

log = logging.getLogger("suite")


def _load_truth(spec: dict, dataset_file: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    if spec["data"]["kind"] == "embedded_digits":
        return digits("test", spec["task_spec"]["image_size"], spec["n_images"])
    from datasets.paper import load_images
    if dataset_file is None:
        raise FileNotFoundError(f"task {spec['task']!r} reads a paper dataset: pass its verified file")
    x = load_images(spec["dataset"], dataset_file, spec["n_images"])
    return x, torch.full((len(x),), -1)


def degrade(spec: dict, out: str, dataset_file: str | None = None) -> None:
    """Draw y = A(x) + sigma_y n for the first ``n_images`` test images of a task (seeded per image)."""
    task, name = spec["task_spec"], spec["task"]
    x, labels = _load_truth(spec, dataset_file)
    index = np.arange(len(x))
    op = physics.build_operator(task["operator"], x.shape[1:], task["sigma_y"])
    y = op.measure(x.double(), generators(spec["profile"], name, "measure", index)).float()
    log.info("degraded %d images for %s: x %s -> y %s", len(x), name, tuple(x.shape), tuple(y.shape))
    io.write_tensors(out, {"x": x, "y": y, "labels": labels, "index": torch.from_numpy(index)},
                     metadata={"task": name, "profile": spec["profile"]})


def solve(spec: dict, degraded: str, out_samples: str, out_meta: str) -> None:
    """Run one solver on all measurements of a task, as one batch; record NFE, time and memory."""
    data = io.read_tensors(degraded)
    task, name, solver = spec["task_spec"], spec["task"], spec["solver"]
    module = solver_module(solver)
    device = spec.get("device", "cpu")
    x_shape = data["x"].shape[1:]
    op = physics.build_operator(task["operator"], x_shape, task["sigma_y"])
    kind = getattr(module, "USES_PRIOR", False)
    prior = None
    if kind:
        from priors.registry import load_prior
        prior = load_prior(kind, spec.get("priors", {})).to(device)
    index = data["index"].tolist()
    gens = generators(spec["profile"], name, solver, index, device)
    hyper = dict(spec.get("hyper", {}))
    if hyper.get("prompts") == "true_caption":            # the oracle rows: each image's own caption
        if (data["labels"] < 0).any():
            raise ValueError(f"task {name!r} has no labels, so 'true_caption' prompts are not available")
        hyper["prompts"] = [caption(int(label)) for label in data["labels"]]
    y = data["y"].to(device)
    with stopwatch(device) as t:
        x_hat = module.solve(y, op, prior, generator=gens, **hyper)
    if not torch.isfinite(x_hat).all():
        raise FloatingPointError(f"solver {solver!r} produced NaN or inf on task {name!r}")
    nfe_total = int(getattr(prior, "nfe", 0))
    meta = {"wall_time_s": t["wall_time_s"], "peak_memory_mb": t["peak_memory_mb"],
            "nfe_total": nfe_total, "nfe_per_image": nfe_total / len(index),
            "seeds": [seed_for(spec["profile"], name, solver, i) for i in index]}
    log.info("%s on %s: %d images in %.1f s", solver, name, len(index), t["wall_time_s"])
    io.write_tensors(out_samples, {"x_hat": x_hat.float().cpu(), "index": data["index"]})
    io.write_json(out_meta, meta)


def score(spec: dict, degraded: str, samples: str, meta: str, out_record: str) -> None:
    """Per-image PSNR / SSIM / LPIPS and set-level FID / KID; assemble and validate the run record."""
    data, est, run = io.read_tensors(degraded), io.read_tensors(samples), io.read_json(meta)
    if not torch.equal(data["index"], est["index"]):
        raise ValueError(f"{samples} does not hold the images of {degraded}")
    x, x_hat = data["x"], est["x_hat"]
    fs = feature_space(spec["features"], spec.get("device", "cpu"))
    f_true, f_hat = fs.features(x), fs.features(x_hat)
    per_image = {"index": data["index"].tolist(), "psnr": psnr(x_hat, x).tolist(),
                 "ssim": ssim(x_hat, x).tolist(), "lpips": fs.lpips(x_hat, x).tolist()}
    summary = {k: float(np.mean(v)) for k, v in per_image.items() if k != "index"}
    summary["fid"] = fid(f_hat, f_true)
    summary["kid"] = kid(f_hat, f_true)
    record = {
        "schema": SCHEMA_ID,
        "profile": spec["profile"], "task": spec["task"], "solver": spec["solver"],
        "config": spec, "git_revision": git_revision(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_images": len(x), "seeds": {"measure": [seed_for(spec["profile"], spec["task"], "measure", i)
                                                  for i in per_image["index"]],
                                      "solver": run["seeds"]},
        "nfe": {"per_image": run["nfe_per_image"], "total": run["nfe_total"]},
        "wall_time_s": run["wall_time_s"], "peak_memory_mb": run["peak_memory_mb"],
        "feature_space": fs.description,
        "per_image": per_image, "metrics": summary,
    }
    validate_record(record)
    io.write_json(out_record, record)



def table(spec: dict, records: list[str], paper_numbers: str, out: str) -> None:
    """Render ``results/table_<name>.md`` from run records."""
    from report.tables import load_paper_numbers, render_table
    recs = [validate_record(io.read_json(r)) for r in records]
    io.write_text(out, render_table(spec, recs, load_paper_numbers(paper_numbers)))
    log.info("wrote %s from %d run records", out, len(recs))
