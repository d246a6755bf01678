"""Speed levers measured side by side: ``results/bench_speed.md`` (config ``speed``).

A lever is a pair of overrides of a solve, ``before`` and ``after`` (keys ``precision``, ``batch_size``,
``threads``). ``speed_pair`` runs one solver on the first ``n_images`` measurements of a task twice in one
process, on the same measurements with the same per-image seeds, before then after, and keeps each run's wall
time (the solve alone: the prior's load and bare-call timing excluded), its NFE and every image's PSNR. The
report gives the speed-up and the paired PSNR difference after - before (mean and standard error over the
images): a lever that moves a metric shows it beside its gain.

``speed_networks`` times each network of the profile's priors alone (per image, at a batch of one and of
``batch``, 1 and 2 threads, float32 and under bfloat16 autocast, forward and forward + backward with respect to
its input): why ``priors/precision.py`` autocasts where it does. ``speed_layouts`` times the same calls in
channels_last and compiled by ``torch.compile`` against eager float32.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

LEVER_KEYS = ("precision", "batch_size", "threads")


def machine(device: str = "cpu") -> dict:
    """What the times were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__, "device": device}


def _run(spec: dict, degraded: str, truth: torch.Tensor, overrides: dict, workdir: str, tag: str) -> dict:
    from ipbench.metrics.image import psnr
    from ipbench.suite import io, stages
    unknown = set(overrides) - set(LEVER_KEYS)
    if unknown:
        raise ValueError(f"unknown lever key(s) {sorted(unknown)}; valid: {', '.join(LEVER_KEYS)}")
    run = {**spec, **{k: v for k, v in overrides.items() if k != "threads"}, "bare_timing": False}
    run["batch_size"] = min(run.get("batch_size") or run["solver_images"], run["solver_images"])
    threads = torch.get_num_threads()
    torch.set_num_threads(int(overrides.get("threads", threads)))
    try:
        samples, meta = f"{workdir}/{tag}.safetensors", f"{workdir}/{tag}.json"
        stages.solve(run, degraded, samples, meta)
    finally:
        torch.set_num_threads(threads)
    out, m = io.read_tensors(samples), json.loads(Path(meta).read_text())
    n = len(out["x_hat"])
    return {"overrides": overrides, "wall_time_s": m["wall_time_s"], "seconds_per_image": m["wall_time_s"] / n,
            "nfe_per_image": m["nfe_total"] / n, "batch_size": run["batch_size"],
            "threads": int(overrides.get("threads", threads)), "psnr": psnr(out["x_hat"], truth[:n]).tolist()}


def speed_pair(spec: dict, degraded: str, out: str) -> dict:
    """One solver before and after a lever (``spec``: ``suite.config.speed_spec``; ``solver_images`` the images,
    ``lever_overrides`` the lever's before and after)."""
    from ipbench.suite import io
    lever = spec["lever_overrides"]
    spec = {**spec, "shard": [0, spec["solver_images"]]}
    truth = io.read_tensors(degraded)["x"]
    with tempfile.TemporaryDirectory() as tmp:
        before, after = (_run(spec, degraded, truth, lever.get(tag, {}), tmp, tag) for tag in ("before", "after"))
    diff = np.array(after["psnr"]) - np.array(before["psnr"])
    record = {"task": spec["task"], "solver": spec["solver"], "lever": spec["lever"], "profile": spec["profile"],
              "n_images": len(diff), "before": before, "after": after,
              "speedup": before["wall_time_s"] / after["wall_time_s"],
              "psnr_diff_mean": float(diff.mean()),
              "psnr_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan"),
              "psnr_diff_max_abs": float(np.abs(diff).max()), "machine": machine(spec.get("device", "cpu"))}
    return _write(record, out)


def _write(record: dict, out: str) -> dict:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(record, indent=1))
    return record


def _time(fn, reps: int) -> float:
    fn()                                                       # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def networks(priors: dict) -> dict:
    """{name: (call(x), shape of one input, the (owner, attribute) of each module the call runs)} for the
    networks of the profile's pixel and latent priors."""
    from ipbench.suite.priors import load_prior
    nets = {}
    if "pixel" in priors:
        p = load_prior("pixel", priors)
        nets[f"pixel denoiser ({priors['pixel']})"] = (lambda x: p._eps(x, 500), (1, 32, 32), [(p, "unet")])
    if "latent" in priors:
        q = load_prior("latent", {"latent": priors["latent"]})
        c = q.embed(["a photo of a handwritten digit 3"])
        z_shape = tuple(q.latent_shape((1, 64, 64)))
        nets[f"latent denoiser ({priors['latent']})"] = (lambda z: q._eps(z, 500, c.expand(len(z), -1, -1)),
                                                         z_shape, [(q, "unet")])
        nets["encoder (autoencoder)"] = (q._encode, (1, 64, 64), [(q.vae, "encoder")])
        nets["decoder (autoencoder)"] = (q._decode, z_shape, [(q.vae, "decoder")])
    return nets


def speed_networks(priors: dict, out: str, batch: int = 20, reps: int = 5) -> dict:
    """Milliseconds per image of each network call, float32 and under bfloat16 autocast (raw, whatever the
    policy of priors/precision.py), forward and forward + backward, batch 1 and ``batch``, 1 and 2 threads."""
    rows, threads = [], torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    try:
        for name, (call, shape, _) in networks(priors).items():
            for grad in (False, True):
                for b in (1, batch):
                    for n_threads in (1, 2):
                        torch.set_num_threads(n_threads)
                        row = {"network": name, "mode": "forward + backward" if grad else "forward", "batch": b,
                               "threads": n_threads}
                        x0 = torch.randn((b, *shape), generator=g)
                        for bf16 in (False, True):
                            def once():
                                x = x0.clone().requires_grad_(grad)
                                with torch.set_grad_enabled(grad), \
                                        torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                                    y = call(x)
                                if grad:
                                    torch.autograd.grad(y.float().sum(), x)
                            row["bf16_ms" if bf16 else "float32_ms"] = 1e3 * _time(once, reps) / b
                        rows.append(row)
    finally:
        torch.set_num_threads(threads)
    return _write({"rows": rows, "machine": machine(), "reps": reps}, out)


def _swap(parts, make):
    """Replace each (owner, attribute) module by ``make(module)``; returns what puts the originals back."""
    originals = [(owner, attr, getattr(owner, attr)) for owner, attr in parts]
    for owner, attr, module in originals:
        setattr(owner, attr, make(module))

    def restore():
        for owner, attr, module in originals:
            setattr(owner, attr, module)
    return restore


def speed_layouts(priors: dict, out: str, batch: int = 20, reps: int = 5) -> dict:
    """Milliseconds per image of each network call at a batch of ``batch`` on 2 threads, float32: eager in the
    default layout, eager in channels_last (the modules' 4-D weights and the input), and compiled by
    ``torch.compile`` (inductor, static shapes); forward and forward + backward with respect to the input. Also
    the first compiled call's wall time (the compilation a job pays once per shape) and the largest absolute
    difference of the compiled output from the eager one."""
    import torch._dynamo
    rows, threads = [], torch.get_num_threads()
    g = torch.Generator().manual_seed(0)
    torch.set_num_threads(2)
    try:
        for name, (call, shape, parts) in networks(priors).items():
            for grad in (False, True):
                x0 = torch.randn((batch, *shape), generator=g)

                def once(layout=torch.contiguous_format):
                    x = x0.clone().contiguous(memory_format=layout).requires_grad_(grad)
                    with torch.set_grad_enabled(grad):
                        y = call(x)
                    if grad:
                        torch.autograd.grad(y.float().sum(), x)
                    return y.detach().float()

                row = {"network": name, "mode": "forward + backward" if grad else "forward", "batch": batch,
                       "threads": 2, "eager_ms": 1e3 * _time(once, reps) / batch}
                reference = once()
                for owner, attr in parts:
                    getattr(owner, attr).to(memory_format=torch.channels_last)
                try:
                    row["channels_last_ms"] = 1e3 * _time(lambda: once(torch.channels_last), reps) / batch
                finally:
                    for owner, attr in parts:
                        getattr(owner, attr).to(memory_format=torch.contiguous_format)
                torch._dynamo.reset()
                restore = _swap(parts, lambda m: torch.compile(m, dynamic=False))
                try:
                    start = time.perf_counter()
                    compiled = once()
                    row["compile_s"] = time.perf_counter() - start
                    row["compiled_ms"] = 1e3 * _time(once, reps) / batch
                    row["compiled_max_abs_diff"] = float((compiled - reference).abs().max())
                finally:
                    restore()
                    torch._dynamo.reset()
                rows.append(row)
    finally:
        torch.set_num_threads(threads)
    return _write({"rows": rows, "machine": machine(), "reps": reps}, out)


def render(title: str, pairs: list[dict], nets: dict | None, layouts: dict | None = None) -> str:
    """``results/bench_speed.md`` from the pair records and the network record."""
    m = next(r for r in (*pairs, nets, layouts) if r)["machine"]
    lines = [f"# {title}", "",
             f"Measured on {m['cpu']} ({m['cores']} cores), torch {m['torch']}, device {m['device']}. "
             "Each solver ran twice in one process on the same measurements and per-image seeds, before then "
             "after the lever; time: the solve alone (no prior load, no bare-call timing). ΔPSNR: after - "
             "before, paired per image, mean ± standard error (kept: |mean| < 0.05 dB).", "",
             "| lever | task | solver | images | NFE / image | before s / image | after s / image | speed-up "
             "| PSNR before | PSNR after | ΔPSNR dB | max abs Δ | metric |", "|" + "---|" * 13]
    for r in pairs:
        b, a = r["before"], r["after"]
        moved = abs(r["psnr_diff_mean"]) >= 0.05
        lines.append(f"| {r['lever']} | {r['task']} | {r['solver']} | {r['n_images']} | {b['nfe_per_image']:g} "
                     f"| {b['seconds_per_image']:.2f} | {a['seconds_per_image']:.2f} | {r['speedup']:.2f} "
                     f"| {np.mean(b['psnr']):.2f} | {np.mean(a['psnr']):.2f} "
                     f"| {r['psnr_diff_mean']:+.3f} ± {r['psnr_diff_se']:.3f} | {r['psnr_diff_max_abs']:.3f} "
                     f"| {'moves' if moved else 'kept'} |")
    if nets:
        lines += ["", "## The networks alone", "",
                  f"Milliseconds per image (median of {nets['reps']} calls after a warm-up); bf16: bfloat16 "
                  "autocast around the call (raw, whatever priors/precision.py applies).", "",
                  "| network | mode | batch | threads | float32 ms | bf16 ms | bf16 speed-up |", "|" + "---|" * 7]
        for r in nets["rows"]:
            lines.append(f"| {r['network']} | {r['mode']} | {r['batch']} | {r['threads']} | {r['float32_ms']:.2f} "
                         f"| {r['bf16_ms']:.2f} | {r['float32_ms'] / r['bf16_ms']:.2f} |")
    if layouts:
        lines += ["", "## Memory layout and compilation", "",
                  f"Milliseconds per image, float32, 2 threads (median of {layouts['reps']} calls after a warm-up): "
                  "eager in the default layout, eager in channels_last (weights and input), and compiled by "
                  "torch.compile (inductor, static shapes). Compile s: the first compiled call, paid once per "
                  "input shape and process; max abs Δ: the compiled output against the eager one.", "",
                  "| network | mode | batch | eager ms | channels_last ms | speed-up | compiled ms | speed-up "
                  "| compile s | max abs Δ |", "|" + "---|" * 10]
        for r in layouts["rows"]:
            lines.append(f"| {r['network']} | {r['mode']} | {r['batch']} | {r['eager_ms']:.2f} "
                         f"| {r['channels_last_ms']:.2f} | {r['eager_ms'] / r['channels_last_ms']:.2f} "
                         f"| {r['compiled_ms']:.2f} | {r['eager_ms'] / r['compiled_ms']:.2f} | {r['compile_s']:.0f} "
                         f"| {r['compiled_max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"
