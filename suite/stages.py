"""The stages of the DAG, one function each: degrade -> solve -> score -> table.

Each takes the resolved ``spec`` of its job (a dict built by the Snakefile from the config and
stored in every record) and explicit input / output paths, and writes its outputs atomically.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ipbench import physics
from ipbench.datasets import caption, digits
from ipbench.metrics import fid, kid, psnr, ssim
from ipbench.metrics.accounting import stopwatch
from ipbench.metrics.features import feature_space
from ipbench.report.records import SCHEMA_ID, git_revision, validate_record
from . import io
from .config import ROOT
from .registry import prior_kind, solver_module
from .seeding import generators, seed_for

log = logging.getLogger("suite")


def _load_truth(spec: dict, dataset_file: str | None, lock: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    if spec["data"]["kind"] == "embedded_digits":
        if spec["task_spec"].get("family") == "video":
            from ipbench.datasets.video import moving_digits
            clips, labels, _ = moving_digits("test", spec["n_images"], spec["task_spec"]["frames"])
            return clips, labels
        return digits("test", spec["task_spec"]["image_size"], spec["n_images"])
    from ipbench.datasets.fetch import Lock, verify
    from ipbench.datasets.paper import load_clips, load_images
    if dataset_file is None:
        raise FileNotFoundError(f"task {spec['task']!r} reads a paper dataset: pass its verified file")
    recipe = spec["dataset"]
    verify(recipe["key"], {**recipe["source"], **({"sha256": recipe["sha256"]} if recipe.get("sha256") else {})},
           dataset_file, Lock(lock) if lock else Lock())
    try:
        if spec["task_spec"].get("family") == "video":
            x = load_clips(recipe, dataset_file, spec["n_images"], spec["task_spec"]["frames"])
        else:
            x = load_images(recipe, dataset_file, spec["n_images"])
    except Exception as err:
        raise ValueError(f"could not read the images of {recipe['key']} from {dataset_file}: {err}") from None
    return x, torch.full((len(x),), -1)


def degrade(spec: dict, out: str, dataset_file: str | None = None, lock: str | None = None) -> None:
    """Draw y = A(x) + sigma_y n for the first ``n_images`` test images of a task (seeded per image)."""
    task, name = spec["task_spec"], spec["task"]
    x, labels = _load_truth(spec, dataset_file, lock)
    index = np.arange(len(x))
    op = physics.build_operator(task["operator"], x.shape[1:], task["sigma_y"])
    y = op.measure(x.double(), generators(spec["profile"], name, "measure", index)).float()
    log.info("degraded %d images for %s: x %s -> y %s", len(x), name, tuple(x.shape), tuple(y.shape))
    tensors = {"x": x, "y": y, "labels": labels, "index": torch.from_numpy(index)}
    if x.ndim == 5 and spec.get("fvmd_tracker", "lk") == "lk":   # the true clips' FVMD features, tracked once
        from ipbench.metrics.fvmd import clip_features                 # for every solver's score
        tensors["fvmd_reference_lk"] = torch.from_numpy(clip_features(x, "lk"))
    io.write_tensors(out, tensors, metadata={"task": name, "profile": spec["profile"]})


def with_prompts(hyper: dict, labels: torch.Tensor, task: str) -> dict:
    """hyper with ``prompts`` as one string per image: 'true_caption' (the oracle rows: each image's own
    caption) or one prompt for every image."""
    hyper = dict(hyper)
    prompts = hyper.get("prompts")
    if prompts == "true_caption":
        if (labels < 0).any():
            raise ValueError(f"task {task!r} has no labels, so 'true_caption' prompts are not available")
        hyper["prompts"] = [caption(int(label)) for label in labels]
    elif isinstance(prompts, str):
        hyper["prompts"] = [prompts] * len(labels)
    return hyper


def solve(spec: dict, degraded: str, out_samples: str, out_meta: str) -> None:
    """Run one solver on one shard of a task's measurements (``spec['shard']``: the image range [start, stop);
    all images without it), in mini-batches of ``spec['batch_size']`` images; record NFE, time and memory."""
    data = _first(io.read_tensors(degraded), spec.get("solver_images"))
    lo, hi = spec.get("shard", (0, len(data["index"])))
    data = {k: v[lo:hi] for k, v in data.items()}
    task, name, solver = spec["task_spec"], spec["task"], spec["solver"]
    module = solver_module(spec.get("module", solver))
    device = spec.get("device", "cpu")
    x_shape = data["x"].shape[1:]
    op = physics.build_operator(task["operator"], x_shape, task["sigma_y"])
    kind = prior_kind(spec.get("module", solver))
    prior, load_s = None, 0.0
    if kind:
        from ipbench.suite.priors import load_prior
        with stopwatch(device) as loading:
            prior = load_prior(kind, spec.get("priors", {}), spec.get("precision", "float32")).to(device)
        load_s = loading["wall_time_s"]
        log.info("%s prior %s loaded and sha256-verified in %.2f s", kind, spec["priors"], load_s)
    index = data["index"].tolist()
    gens = generators(spec["profile"], name, solver, index, device)
    hyper = with_prompts(spec.get("hyper", {}), data["labels"], name)
    batch = spec.get("batch_size") or len(index)
    timed = prior is not None and spec.get("bare_timing", True)
    if prior is not None:       # bare network calls timed in the course of the solve (priors/calls.py)
        prior.calls.interleave(spec.get("bare_timing_every", 0) if timed else 0).progress(
            f"{solver} on {name}, images {lo}..{hi - 1}")
    run = getattr(module, "solve_with_extras", None)      # a solver with more to keep than the image
    log.info("%s on %s: images %d..%d in mini-batches of %d", solver, name, lo, hi - 1, batch)
    parts = []
    with stopwatch(device) as t:
        for b in range(0, len(index), batch):
            part = slice(b, b + batch)
            y = data["y"][part].to(device)
            kw = {k: v[part] if k == "prompts" else v for k, v in hyper.items()}   # prompts: one per image
            x_hat, extras = run(y, op, prior, generator=gens[part], **kw) if run else \
                (module.solve(y, op, prior, generator=gens[part], **kw), {})
            parts.append({"x_hat": x_hat.float().cpu(), **{k: v.float().cpu() for k, v in extras.items()}})
            del x_hat, extras, y
    if prior is not None:
        prior.calls.close_progress()
    out = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    replay_s = prior.calls.replay_s if prior is not None else 0.0
    wall_s = t["wall_time_s"] - replay_s
    if not torch.isfinite(out["x_hat"]).all():
        raise FloatingPointError(f"solver {solver!r} produced NaN or inf on task {name!r}")
    nfe_total = int(getattr(prior, "nfe", 0))
    meta = {"shard": [lo, hi], "batch_size": batch, "wall_time_s": wall_s, "bare_timing_s": replay_s,
            "peak_memory_mb": t["peak_memory_mb"], "nfe_total": nfe_total,
            "autoencoder_calls": int(getattr(prior, "ae_calls", 0)), "prior_load_s": load_s,
            "seeds": [seed_for(spec["profile"], name, solver, i) for i in index]}
    if prior is not None:
        meta["network_calls"] = {k: int(v) for k, v in prior.calls.summary().items()}
    if timed:                   # the network calls alone: the cost no loop can avoid (priors/calls.py)
        from ipbench.priors.calls import bare_seconds
        meta["bare_network_s"] = bare_seconds(prior.calls, device)
    log.info("%s on %s: %d images in %.1f s (%.1f s more timing bare calls)", solver, name, len(index), wall_s,
             replay_s)
    io.write_tensors(out_samples, {**out, "index": data["index"]})
    io.write_json(out_meta, meta)


def gather(samples: list[str], metas: list[str]) -> tuple[dict, dict]:
    """The shards of one solve as one: samples concatenated in image order, their costs summed (time, calls,
    NFE) or maxed (peak memory; shards run as separate jobs), each shard's own cost kept under ``shards``."""
    parts, runs = [io.read_tensors(p) for p in samples], [io.read_json(m) for m in metas]
    order = sorted(range(len(runs)), key=lambda i: runs[i]["shard"][0])
    parts, runs = [parts[i] for i in order], [runs[i] for i in order]
    for prev, cur in zip(runs, runs[1:]):
        if prev["shard"][1] != cur["shard"][0]:
            raise ValueError(f"the shards do not tile the images: {prev['shard']} then {cur['shard']}")
    est = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    n = len(est["index"])
    total = lambda key: sum(r.get(key, 0) for r in runs)
    run = {"wall_time_s": total("wall_time_s"), "bare_timing_s": total("bare_timing_s"),
           "peak_memory_mb": max(r["peak_memory_mb"] for r in runs), "nfe_total": total("nfe_total"),
           "nfe_per_image": total("nfe_total") / n, "autoencoder_calls_per_image": total("autoencoder_calls") / n,
           "prior_load_s": total("prior_load_s"), "seeds": [s for r in runs for s in r["seeds"]],
           "shards": [{k: r[k] for k in ("shard", "batch_size", "wall_time_s", "peak_memory_mb", "nfe_total")}
                      for r in runs]}
    for key in ("network_calls", "bare_network_s"):
        if any(key in r for r in runs):
            summed: dict = {}
            for r in runs:
                for k, v in r.get(key, {}).items():
                    summed[k] = summed.get(k, 0) + v
            run[key] = summed
    return est, run


def _first(data: dict, n: int | None) -> dict:
    """The first n images of a degraded set (a solver configured with fewer images than its task)."""
    return data if n is None else {k: v[:n] for k, v in data.items()}


def fetched_features(features: dict) -> dict:
    """The feature spec with the folders of its fetched networks (paper profile: Inception, VGG), each file
    verified against its sha256 first; shipped weights (``path``) pass through."""
    if "path" in features or "checkpoint" not in features:
        return features
    from ipbench.priors.paper import materialize
    from ipbench.store.catalog import checkpoint
    out = {**features, "inception_dir": str(materialize(features["checkpoint"]))}
    if features.get("lpips_checkpoint"):
        name = features["lpips_checkpoint"]
        out["vgg_file"] = str(materialize(name) / checkpoint(name)["files"][0])
    if features.get("fvmd_checkpoint"):
        name = features["fvmd_checkpoint"]
        out.update(fvmd_file=str(materialize(name) / checkpoint(name)["files"][0]),
                   fvmd_architecture=checkpoint(name).get("architecture"))
    return out


def _pips(features: dict, device: str):
    """FVMD's PIPs++ tracker from its fetched, verified file."""
    from ipbench.metrics.pips import load_pips
    return load_pips(features["fvmd_file"], features.get("fvmd_architecture")).to(device)


def score(spec: dict, degraded: str, samples: list[str], metas: list[str], out_record: str,
          out_samples: str | None = None) -> None:
    """Gather the shards of a solve (``out_samples``: their samples as one file), score them: per-image PSNR /
    SSIM / LPIPS and set-level FID / KID; assemble and validate the run record."""
    est, run = gather(samples, metas)
    data = _first(io.read_tensors(degraded), spec.get("solver_images"))
    if not torch.equal(data["index"], est["index"]):
        raise ValueError(f"the shards {', '.join(samples)} do not hold the images of {degraded}")
    x, x_hat = data["x"], est["x_hat"]
    fs_spec = fetched_features(spec["features"])
    fs = feature_space(fs_spec, spec.get("score_device", "cpu"))
    # clips (N, T, C, H, W): the feature metrics and the digit reading run on their frames; LPIPS and the reading
    # are averaged over each clip's frames, FID / KID compare the sets of frames (PSNR, SSIM: metrics/image.py)
    video = x.ndim == 5
    frames = (lambda v: v.flatten(0, 1)) if video else (lambda v: v)
    per_item = (lambda v: np.asarray(v, dtype=np.float64).reshape(len(x), -1).mean(1)) if video else (lambda v: v)
    f_true, f_hat = fs.features(frames(x)), fs.features(frames(x_hat))
    per_image = {"index": data["index"].tolist(), "psnr": psnr(x_hat, x).tolist(),
                 "ssim": ssim(x_hat, x).tolist(), "lpips": per_item(fs.lpips(frames(x_hat), frames(x))).tolist()}
    labels = data.get("labels")
    predicted = fs.classify(frames(x_hat)) if labels is not None and bool((labels >= 0).all()) else None
    if predicted is not None:   # the digit network's reading of each restoration (frame): 1 if the true class
        truth = labels.repeat_interleave(x.shape[1]) if video else labels
        per_image["digit_accuracy"] = per_item((predicted == truth).float().numpy()).tolist()
    summary = {k: float(np.mean(v)) for k, v in per_image.items() if k != "index"}
    summary["fid"] = fid(f_hat, f_true)
    summary["kid"] = kid(f_hat, f_true)
    description = fs.description
    if x.ndim == 5:             # videos: FVMD between the sets of restored and true clips
        from ipbench.metrics.fvmd import TRACKERS, fvmd
        tracker = spec.get("fvmd_tracker", "lk")
        net = _pips(fs_spec, spec.get("score_device", "cpu")) if tracker == "pips2" else None
        reference = data.get(f"fvmd_reference_{tracker}")     # tracked at the degrade stage (once per task)
        summary["fvmd"] = fvmd(x_hat, x if reference is None else reference.flatten(0, 1).numpy(), tracker, net=net)
        description = f"{description}; FVMD tracks with {TRACKERS[tracker]}"
    record = {
        "schema": SCHEMA_ID,
        "profile": spec["profile"], "task": spec["task"], "solver": spec["solver"],
        "config": spec, "git_revision": git_revision(ROOT),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_images": len(x), "seeds": {"measure": [seed_for(spec["profile"], spec["task"], "measure", i)
                                                  for i in per_image["index"]],
                                      "solver": run["seeds"]},
        "nfe": {"per_image": run["nfe_per_image"], "total": run["nfe_total"]},
        "wall_time_s": run["wall_time_s"], "peak_memory_mb": run["peak_memory_mb"],
        "cost": {k: run[k] for k in ("autoencoder_calls_per_image", "network_calls", "bare_network_s", "bare_timing_s",
                                           "prior_load_s")
                 if k in run},
        "shards": run["shards"],
        "feature_space": description,
        "per_image": per_image, "metrics": summary,
    }
    validate_record(record)
    if out_samples:
        io.write_tensors(out_samples, est)
    io.write_json(out_record, record)



def table(spec: dict, records: list[str], paper_numbers: str, out: str, out_csv: str | None = None) -> None:
    """Render ``results/table_<name>.md`` and its numbers, ``results/table_<name>.csv``, from run records."""
    from ipbench.report.tables import load_paper_numbers, render
    recs = [validate_record(io.read_json(r)) for r in records]
    text, frame = render(spec, recs, load_paper_numbers(paper_numbers))
    out_csv = out_csv or str(Path(out).with_suffix(".csv"))
    frame.to_csv(out_csv + ".tmp", index=False, float_format="%.6g")
    os.replace(out_csv + ".tmp", out_csv)
    io.write_text(out, text)
    log.info("wrote %s and %s from %d run records", out, out_csv, len(recs))


def bench(spec: dict, records: list[str], out: str, paper_numbers: str | None = None) -> None:
    """Render ``results/bench_<name>.md`` from the run records of a table, and the published cost table
    (``spec['paper_table']``) below them."""
    from ipbench.report.bench import published_cost, render_bench
    from ipbench.report.tables import load_paper_numbers
    recs = [validate_record(io.read_json(r)) for r in records]
    published = None
    if spec.get("paper_table"):
        if not paper_numbers:
            raise ValueError(f"bench {spec['name']!r} names a published table: pass --paper-numbers")
        published = published_cost(load_paper_numbers(paper_numbers), spec["paper_table"])
    io.write_text(out, render_bench(spec["title"], recs, published))


def restoration_figure(spec: dict, degraded: str, samples: list[str], out: str) -> None:
    """Truth, measurement and every solver's estimate for the first images all solvers ran on (at most 6); for
    clips, frame strips and an x-t slice of the first clip (``report.figures.video_strips``)."""
    from ipbench.report.figures import restoration_grid, video_strips
    data = io.read_tensors(degraded)
    estimates = {label: io.read_tensors(path)["x_hat"] for label, path in zip(spec["labels"], samples)}
    if data["x"].ndim == 5:
        video_strips(f"{spec['title']}: test clip 0", data["x"][0], data["y"][0], {k: v[0] for k, v in estimates.items()},
                     out, op=_figure_operator(spec, data["x"]))
        return
    n = min(min(len(e) for e in estimates.values()), 6)
    restoration_grid(spec["title"], data["x"][:n], data["y"][:n], {k: v[:n] for k, v in estimates.items()}, out, n)


def _figure_operator(spec: dict, x):
    from ipbench import physics
    return physics.build_operator(spec["operator"], x.shape[1:], spec["sigma_y"])


def clip_gif(spec: dict, degraded: str, sample: str, out: str) -> None:
    """An animated GIF of the first test clip: truth | measurement (shown at the truth's size) | the solver's."""
    from ipbench.report.figures import measurement_clip, side_by_side, write_gif
    data = io.read_tensors(degraded)
    x, y = data["x"][0], data["y"][0]
    if x.ndim != 4:
        raise ValueError(f"{degraded} holds images, not clips: a GIF is for video tasks")
    y_clip = measurement_clip(y, x.shape, _figure_operator(spec, data["x"]))
    write_gif(side_by_side([x, y_clip, io.read_tensors(sample)["x_hat"][0].float()]), out)


def calibration_report(spec: dict, degraded: list[str], records: list[str], samples: list[str], out: str) -> None:
    """``results/calibration_latino_pro.md``: what the calibrated prompts are and what they restore
    (``report/calibration.py``); ``degraded``, ``records`` and ``samples`` follow ``spec['pairs']``."""
    from ipbench.suite.priors import load_prior
    from ipbench.report.calibration import prompt_rows, render
    prior = load_prior("consistency", spec["priors"])
    captions = prior.embed([caption(k) for k in range(10)]).cpu().float()
    sections = {}
    for (task, solver), deg_path, rec_path, sample_path in zip(spec["pairs"], degraded, records, samples):
        rec, est = validate_record(io.read_json(rec_path)), io.read_tensors(sample_path)
        if "digit_accuracy" not in rec["per_image"]:
            raise ValueError(f"{rec_path} has no digit reading: the calibration report needs labelled digits")
        labels = _first(io.read_tensors(deg_path), rec["n_images"])["labels"]
        row = spec["rows"][solver]
        if "prompt_embeds" in est:
            c = est["prompt_embeds"]
        else:
            prompts = with_prompts({"prompts": row["prompts"] or prior.generic_prompt}, labels, task)["prompts"]
            c = prior.embed(prompts).cpu()
        sec = sections.setdefault(task, {"title": spec["titles"][task], "rows": [], "frozen": spec["frozen_tokens"]})
        sec["rows"].append({"label": row["label"], "n": rec["n_images"], "psnr": rec["per_image"]["psnr"],
                            "digit": rec["per_image"]["digit_accuracy"],
                            **prompt_rows(c.float(), captions, labels, spec["frozen_tokens"])})
    io.write_text(out, render("What LATINO-PRO's prompt calibration does (measured)", list(sections.values())))


def calibration_figure(spec: dict, degraded: str, out: str) -> None:
    """LATINO and LATINO-PRO on the first images of a task, and prior samples with the initial and the
    calibrated prompt (seeded from the solver seeds of those images)."""
    from ipbench.methods import latino, latino_pro
    from ipbench.suite.priors import load_prior
    from ipbench.priors.sampling import consistency_sample
    from ipbench.report.figures import measurement_image, prompt_calibration
    n = spec["n_images"]
    data = _first(io.read_tensors(degraded), n)
    lp, la = spec["latino_pro"], spec["latino"]
    op = physics.build_operator(lp["task_spec"]["operator"], data["x"].shape[1:], lp["task_spec"]["sigma_y"])
    prior = load_prior("consistency", lp["priors"]).to(lp.get("device", "cpu"))
    index = data["index"].tolist()
    y = data["y"].to(lp.get("device", "cpu"))
    hyper = with_prompts(lp["hyper"], data["labels"], lp["task"])
    x_pro, c = latino_pro.solve_with_prompt(y, op, prior, generator=generators(lp["profile"], lp["task"], "latino_pro", index),
                                            **hyper)
    x_la = latino.solve(y, op, prior, generator=generators(la["profile"], la["task"], "latino", index),
                        **with_prompts(la["hyper"], data["labels"], la["task"]))
    prompts = hyper.get("prompts") or [prior.generic_prompt] * len(index)
    c0 = prior.embed(prompts)
    z_shape = prior.latent_shape(data["x"].shape[1:])
    rows = []
    y_img = measurement_image(data["y"], data["x"].shape)
    for i in range(len(index)):
        g = torch.Generator().manual_seed(seed_for(lp["profile"], lp["task"], "prompt_figure", index[i]))
        k = spec["n_samples"]
        s0 = consistency_sample(prior, c0[i:i + 1].expand(k, -1, -1), (k, *z_shape), generator=g)
        g = torch.Generator().manual_seed(seed_for(lp["profile"], lp["task"], "prompt_figure", index[i]))
        s1 = consistency_sample(prior, c[i:i + 1].expand(k, -1, -1), (k, *z_shape), generator=g)
        rows.append({"truth": data["x"][i], "measurement": y_img[i], "latino": x_la[i].cpu(),
                     "latino_pro": x_pro[i].cpu(), "samples_initial": s0.cpu(), "samples_calibrated": s1.cpu()})
    prompt_calibration(rows, out, f"Prompt calibration, {spec['title']}: prior samples with the initial prompt "
                                  f"'{prompts[0]}' and with the prompt LATINO-PRO calibrated on the measurement "
                                  "(same noise)")
