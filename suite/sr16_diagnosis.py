"""Why 8-step LATINO trails the 1,000-step latent peers on ``sr16`` (embedded profile): the numbers
behind note (2) of the LATINO-PRO table. Nothing in the tables or the configs is set from them.

    python -m ipbench.suite.sr16_diagnosis [--n 100]

On the first n test digits of the task: PSNR of A^dagger y; LATINO's chain step by step (PSNR of the
decoded consistency output u and of the prox output, and the residual |A u - y| against the noise
level sigma_y sqrt(m)); LATINO with 8, 16 and 32 steps and from t = 499; the same chain with the
latent DM's Tweedie estimate in place of the consistency step; the mean of 8 LATINO samples; and
the residual of every solver's saved output (``results/solve/``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ipbench.methods.latino import STEPS, initial_estimate, latino_pass, step_rule
from ipbench.metrics import psnr
from ipbench.priors.diffusion import tweedie

SCHEDULES = {"8 steps": STEPS[8], "16 steps": [999 - round(k * 62.5) for k in range(16)],
             "32 steps": [999 - round(k * 31.25) for k in range(32)],
             "8 steps from t = 499": [499, 437, 374, 312, 249, 187, 124, 62]}


def residual(op, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|A x - y| per image."""
    return (op.A(x) - y).flatten(1).norm(dim=1)


class TracedOperator:
    """The operator with its prox recorded: (PSNR of u, PSNR of prox(u), |A u - y|) per call."""

    def __init__(self, op, x: torch.Tensor):
        self.op, self.x, self.rows = op, x, []

    def __getattr__(self, name):
        return getattr(self.op, name)

    def prox(self, u, y, gamma):
        out = self.op.prox(u, y, gamma)
        self.rows.append((float(psnr(u, self.x).mean()), float(psnr(out.clamp(0, 1), self.x).mean()),
                          float(residual(self.op, u, y).mean())))
        return out


@torch.no_grad()
def diagnose(x, y, op, prior, teacher, generators, delta: float, prompt: str | None = None) -> dict:
    """The numbers of note (2). ``generators()`` gives fresh per-image generators (LATINO's seeds);
    ``teacher`` is the latent DM whose Tweedie estimate replaces the consistency step."""
    P = lambda a: float(psnr(a, x).mean())
    c = prior.embed([prompt or prior.generic_prompt] * len(x))
    x_init = initial_estimate(y, op, "pinv")
    gamma = step_rule(op, y, prior, delta)
    traced = TracedOperator(op, x)
    out = {"pinv": P(x_init), "noise_norm": op.sigma_y * y[0].numel() ** 0.5}
    latino_pass(x_init, y, traced, prior, c, STEPS[8], gamma, generators())
    out["trace"] = list(zip(STEPS[8], traced.rows))
    teacher_step = lambda z_t, t: tweedie(z_t, teacher.eps(z_t, t, c), teacher.abar[int(t)])
    runs = [(name, "consistency step", None) for name in SCHEDULES]
    runs += [(name, "latent DM Tweedie", teacher_step) for name in ("8 steps", "32 steps")]
    for name, label, denoise in runs:
        x_hat = latino_pass(x_init, y, op, prior, c, SCHEDULES[name], gamma, generators(), denoise=denoise)
        out[f"{name}, {label}"] = (P(x_hat), float(residual(op, x_hat, y).mean()))
    samples = [latino_pass(x_init, y, op, prior, c, STEPS[8], gamma,
                           [torch.Generator().manual_seed(1000 * s + i) for i in range(len(x))]) for s in range(8)]
    out["one sample"], out["mean of 8 samples"] = P(samples[0]), P(torch.stack(samples).mean(0))
    return out


def main(argv=None):
    from ipbench import physics
    from ipbench.suite.priors import load_prior
    from ipbench.suite import io
    from ipbench.suite.config import ROOT, select
    from ipbench.suite.seeding import generators
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="test digits (the first n of the task)")
    args = ap.parse_args(argv)
    cfg = select({"profile": "embedded"})
    task = cfg["tasks"]["sr16"]
    degraded = ROOT / "results/degraded/embedded/sr16.safetensors"
    if not degraded.exists():
        raise SystemExit(f"{degraded} is missing: run `snakemake --cores all {degraded.relative_to(ROOT)}` first")
    d = io.read_tensors(degraded)
    x, y, index = d["x"][:args.n], d["y"][:args.n], d["index"][:args.n].tolist()
    op = physics.build_operator(task["operator"], x.shape[1:], task["sigma_y"])
    delta = {**cfg["solvers"]["latino"]["hyper"], **cfg["solvers"]["latino"]["per_task"].get("sr16", {})}["delta"]
    out = diagnose(x, y, op, load_prior("consistency", cfg["priors"]), load_prior("latent", cfg["priors"]),
                   lambda: generators("embedded", "sr16", "latino", index), delta)
    print(f"sr16, {len(x)} digits, LATINO delta {delta}; noise level |e| = {out.pop('noise_norm'):.3f}")
    print(f"A^dagger y: {out.pop('pinv'):.2f} dB")
    for t, (pu, px, r) in out.pop("trace"):
        print(f"  t = {t:3d}: PSNR u {pu:.2f}, prox {px:.2f}, |A u - y| {r:.3f}")
    for k, v in out.items():
        print(f"{k}: " + (f"{v[0]:.2f} dB, |A x - y| {v[1]:.3f}" if isinstance(v, tuple) else f"{v:.2f} dB"))
    for f in sorted(Path(ROOT / "results/solve/embedded/sr16").glob("*/samples.safetensors")):
        x_hat = io.read_tensors(f)["x_hat"]
        print(f"saved {f.parent.name} ({len(x_hat)} digits): |A x - y| {float(residual(op, x_hat, d['y'][:len(x_hat)]).mean()):.3f}")


if __name__ == "__main__":
    main()
