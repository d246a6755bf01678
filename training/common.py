"""The epsilon-prediction training loop shared by the embedded diffusion priors (written once).

    t ~ U{0..T-1},  eps ~ N(0, I),  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,
    loss = |eps_theta(x_t, t, c) - eps|^2,  with an EMA of the weights (the shipped model).
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, max_norm: float = 1.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, decay: float) -> None:
    for pt, ps in zip(target.parameters(), source.parameters()):
        pt.lerp_(ps, 1 - decay)


def train_epsilon(unet: torch.nn.Module, data: torch.Tensor, abar: torch.Tensor, *, steps: int, batch_size: int,
                  lr: float, ema_decay: float, seed: int, desc: str,
                  condition: Callable[[torch.Tensor, torch.Generator], dict] | None = None,
                  warmup: int = 500, bf16: bool = False,
                  max_seconds: float | None = None,
                  snapshot: Callable[[int, torch.nn.Module], None] | None = None,
                  snapshot_every: int = 0, t_power: float = 1.0) -> tuple[torch.nn.Module, dict]:
    """Train ``unet`` on ``data`` (N, ...); ``condition(idx, g)`` gives extra network kwargs. Parameters with
    ``requires_grad`` off stay as they are.

    ``max_seconds``: stop after the step that crosses this wall time; the card's ``steps`` is the number done,
    and ``--steps`` of that number reproduces the run (the learning rate is constant after the warm-up).

    ``bf16``: the forward pass under bfloat16 autocast (weights, gradients, optimiser and EMA stay float32);
    about 1.5x faster on CPUs with AVX-512 BF16 for networks of a few million parameters.

    ``snapshot(step, ema)`` every ``snapshot_every`` steps: to gate a long run while it goes on.

    ``t_power``: timesteps drawn as floor(T u^(1 / t_power)), u uniform: 1 is the usual uniform draw, 2 a density
    rising linearly with t (more of the training where the sample's layout is decided)."""
    g = torch.Generator().manual_seed(seed)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    abar = abar.float()
    opt = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup))
    t0, losses = time.time(), []
    for step in (bar := tqdm(range(steps), desc=desc)):
        if max_seconds is not None and time.time() - t0 > max_seconds:
            steps = step
            break
        idx = torch.randint(len(data), (batch_size,), generator=g)
        kwargs = condition(idx, g) if condition else {}
        x0 = data[idx]
        if t_power == 1.0:
            t = torch.randint(0, len(abar), (batch_size,), generator=g)
        else:
            t = (len(abar) * torch.rand(batch_size, generator=g) ** (1 / t_power)).long().clamp_max(len(abar) - 1)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, *([1] * (x0.ndim - 1)))
        with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, **kwargs).sample
        loss = F.mse_loss(pred.float(), eps)
        train_step(opt, loss, unet, ema, ema_decay, losses, bar, step, snapshot=snapshot, snapshot_every=snapshot_every)
        sched.step()
    card = {"steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "seed": seed,
            "precision": "bf16 autocast" if bf16 else "float32", **({"t_power": t_power} if t_power != 1.0 else {}),
            "wall_time_s": round(time.time() - t0, 1), "final_loss_avg200": sum(losses[-200:]) / len(losses[-200:]),
            "parameters": sum(p.numel() for p in unet.parameters()),
            "trained_parameters": sum(p.numel() for p in unet.parameters() if p.requires_grad)}
    return ema, card


def train_step(opt: torch.optim.Optimizer, loss: torch.Tensor, model: torch.nn.Module, ema: torch.nn.Module,
               ema_decay: float, losses: list, bar, step: int, window: int = 200, digits: int = 4,
               snapshot: Callable[[int, torch.nn.Module], None] | None = None, snapshot_every: int = 0) -> None:
    """One optimiser step on ``model``, the EMA update, the running mean loss on the progress bar, and
    ``snapshot(steps done, ema)`` every ``snapshot_every`` steps."""
    optimizer_step(opt, loss, model.parameters())
    ema_update(ema, model, ema_decay)
    losses.append(loss.item())
    if step % 50 == 0:
        bar.set_postfix(loss=f"{sum(losses[-window:]) / len(losses[-window:]):.{digits}f}")
    if snapshot is not None and snapshot_every and (step + 1) % snapshot_every == 0:
        snapshot(step + 1, ema)


def snapshot_writer(out: str, metadata: dict | None = None) -> Callable[[int, torch.nn.Module], None]:
    """A ``snapshot`` that writes the weights so far to OUT.stepN.safetensors (to gate a long run as it goes)."""
    from ipbench.store.files import save_weights

    def write(step: int, model: torch.nn.Module) -> None:
        save_weights(model, out.replace(".safetensors", f".step{step}.safetensors"),
                     metadata={**(metadata or {}), "steps_so_far": str(step)})
    return write


def task_parser(doc: str, steps: int, lr: float):
    """The command line shared by the per-task trainers (UD2M adapters, I2SB bridges)."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--task", required=True, help="a pixel-family task of the embedded profile")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=lr, help="AdamW learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", default="pixel_ddpm", help="the shipped pixel DDPM to start from (checkpoint name)")
    return ap


def task_data(task: str, every: int = 20):
    """(operator, training digits, validation digits, task spec) of an embedded task: the train split,
    every ``every``-th digit of it (class-sorted, so class-balanced) held out for validation."""
    from ipbench import physics
    from ipbench.datasets import digits
    from ipbench.suite.config import degrade_spec, select
    spec = degrade_spec(select({"profile": "embedded"}), task)["task_spec"]
    x, _ = digits("train", spec["image_size"])
    return (physics.build_operator(spec["operator"], x.shape[1:], spec["sigma_y"]), *holdout(x, every), spec)


def holdout(x: torch.Tensor, every: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation): every ``every``-th item held out."""
    val = torch.zeros(len(x), dtype=torch.bool)
    val[::every] = True
    return x[~val], x[val]


def digit_net():
    """The shipped digit network (catalogue entry ``digit_net``), sha256-checked: the gates' classifier."""
    from ipbench.metrics.digit_net import load_digit_net
    from ipbench.store.catalog import resolve
    return load_digit_net(resolve("digit_net"))


def digit_feature_space():
    """The embedded feature space (FID, KID, LPIPS) of the shipped digit network."""
    from ipbench.metrics.features import feature_space
    from ipbench.store.catalog import resolve
    ck = resolve("digit_net")
    return feature_space({"name": "digit_net", "path": str(ck["path"]), "sha256": ck["sha256"],
                          "feature_rms": ck["feature_rms"]})
