"""The embedded warm start of UD2M+RAM: a small reconstruct-anything network (after RAM, Terris, Hurault,
Song, Tachella, arXiv 2503.08915), one network for every pixel task, which sees the task only through its
inputs, as RAM sees the stacked physics [A; sqrt(abar_t) I] with the measurements (y, x_t):

    f_psi(x_t, y) = b + R_psi([b, x_t, 2 sigma_y], t),   b = 2 A^dagger y - 1   ([-1, 1] images)

with A^dagger the truncated pseudo-inverse (the decoded image for JPEG, the observed pixels for inpainting).
R_psi is a small diffusers UNet2DModel with the time embedding of t, trained by MSE on x_0 over the tasks
in turn, t ~ U{0..T-1} per image (``python -m ipbench.priors.ram``). UD2M calls it once per sampler step (NFE
9 + 3 = 12 for K = N = 3) and fine-tunes it jointly with its adapter at 0.1 x the lr.

RAM itself (deepinv's ``RAM``: a DRUNet with Krylov blocks conditioned on A and A^T) is the ``paper``
profile's warm start, ``PhysicsRAMWarmStart``: it sees UD2M's whitened stack [A; sqrt(abar_t) I] with the
measurements (y, x_t') (physics/deepinv_physics.py). ``load_ram`` gives either, by checkpoint.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UNet2DModel

from .diffusion import add_noise

RCOND = 0.03                      # the truncation of A^dagger, as UD2M's f_psi without RAM (methods/ud2m.py)
TASKS = ("px_deblur_gaussian", "px_deblur_uniform", "px_sr4", "px_jpeg10", "px_inpaint70")
CONFIG = dict(sample_size=32, in_channels=3, out_channels=1, layers_per_block=1, block_out_channels=(16, 32, 32),
              down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3, norm_num_groups=8)


def build_net(**overrides) -> UNet2DModel:
    return UNet2DModel(**{**CONFIG, **overrides})


def back_projection(y: torch.Tensor, op) -> torch.Tensor:
    """b = 2 A^dagger y - 1, clamped to [-1, 1]."""
    return 2 * op.A_dagger(y, rcond=RCOND).clamp(0, 1) - 1


class RAMWarmStart:
    """f_psi(x_t, t, y, op) in [-1, 1]; each call is one network evaluation per image, counted by ``counter``
    (the prior whose NFE the solver reports) when given."""

    def __init__(self, net: torch.nn.Module, counter=None):
        self.net = net
        self.counter = counter
        self._last = (None, None, None)             # (y, op, b): b depends on y only, not on the sampler step

    def inputs(self, x_t, y, op) -> tuple[torch.Tensor, torch.Tensor]:
        last_y, last_op, b = self._last
        if last_y is not y or last_op is not op:
            b = back_projection(y, op)
            self._last = (y, op, b)
        b = b.to(x_t)
        return torch.cat([b, x_t, torch.full_like(b, 2 * op.sigma_y)], 1), b

    def _run(self, inp: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=inp.device).expand(inp.shape[0])
        return self.net(inp, t).sample

    def __call__(self, x_t, t, y, op) -> torch.Tensor:
        inp, b = self.inputs(x_t, y, op)
        if self.counter is not None:
            self.counter.nfe += x_t.shape[0]
            self.counter.calls.record("RAM", lambda z: self._run(z, 500), inp)
        return b + self._run(inp, t)

    def parameters(self):
        return self.net.parameters()


class PhysicsRAMWarmStart:
    """RAM proper on UD2M's stacked physics (the official UD2M's ``RAM_Initialization``):

        f_psi(x_t, t, y) = 2 RAM((w_1 y, w_2 x_t'), [w_1 A; w_2 sqrt(abar_t) I]) - 1,   x_t' = (x_t + sqrt(abar_t)) / 2,

    w_i = m / sigma_i whitening both blocks to the smaller noise std m (physics.deepinv_physics.ud2m_stack).
    ``t``: one step for the batch or one per image. Needs a linear operator (UD2M+RAM has no JPEG entry)."""

    def __init__(self, net: torch.nn.Module, counter=None, abar: torch.Tensor | None = None):
        from .schedules import alpha_bar
        self.net = net
        self.counter = counter
        abar = abar if abar is not None else getattr(counter, "abar", None)     # the prior's schedule, if given
        self.abar = (abar if abar is not None else alpha_bar("linear", 1000)).float()

    def __call__(self, x_t, t, y, op) -> torch.Tensor:
        from deepinv.utils import TensorList

        from ipbench.physics.deepinv_physics import ud2m_stack
        abar_t = self.abar.to(x_t.device)[torch.as_tensor(t, device=x_t.device)].to(x_t.dtype)
        stack, measurements = ud2m_stack(op, x_t, abar_t, sigma_floor=self.net.sigma_threshold)
        ys = measurements(y)
        if self.counter is not None:
            self.counter.nfe += x_t.shape[0]
            self.counter.calls.record("RAM", lambda a, b: self.net(TensorList([a, b]), stack), *ys)
        return 2 * self.net(ys, stack) - 1

    def parameters(self):
        return self.net.parameters()


def build_deepinv_ram() -> torch.nn.Module:
    from .paper import deepinv_models
    return deepinv_models().RAM(pretrained=False, device="cpu")


def load_ram(name: str, counter=None) -> RAMWarmStart | PhysicsRAMWarmStart:
    """A RAM network by checkpoint name (config/checkpoints.yaml, sha256-checked): a published one (deepinv's
    RAM, fetched in the ``paper`` profile), a shipped one, or the copy that a UD2M+RAM adapter fine-tuned
    (its tensors named ``ram.*``)."""
    from safetensors.torch import load_file
    from ipbench.suite.config import ROOT, checkpoint
    from .store import verify_sha256
    ck = checkpoint(name)
    if "files" in ck:
        from .paper import load_ram as load_published
        return load_published(name, counter=counter)
    path = ROOT / ck["path"]
    verify_sha256(path, ck["sha256"])
    state = load_file(str(path))
    if any(k.startswith("ram.") for k in state):
        state = {k[4:]: v for k, v in state.items() if k.startswith("ram.")}
    return ram_from_state(state, name, counter)


def ram_from_state(state: dict, name: str, counter=None) -> RAMWarmStart | PhysicsRAMWarmStart:
    """The frozen warm start holding ``state``: deepinv's RAM where the tensor names are its, else R_psi."""
    deepinv_ram = any(k.startswith("m_head.") for k in state)
    net = build_deepinv_ram() if deepinv_ram else build_net()
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{name} holds no RAM network of this architecture: {str(err).splitlines()[0]}") from None
    net = net.eval().requires_grad_(False)
    return PhysicsRAMWarmStart(net, counter) if deepinv_ram else RAMWarmStart(net, counter)


def train(tasks=TASKS, *, steps: int, batch_size: int = 32, lr: float = 1e-3, ema_decay: float = 0.999,
          seed: int = 0) -> tuple[torch.nn.Module, dict, dict]:
    """Fit R_psi on the training digits of every task in turn; return the EMA network, its card and the
    per-task validation data."""
    import copy

    from tqdm import tqdm

    from .schedules import alpha_bar
    from .training import task_data, train_step
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    data = {task: task_data(task) for task in tasks}
    net = build_net().train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    model = RAMWarmStart(net)
    abar = alpha_bar("linear", 1000).float()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    t0, losses = time.time(), []
    for step in (bar := tqdm(range(steps), desc="RAM warm start")):
        op, x_train, _, _ = data[tasks[step % len(tasks)]]
        x0 = x_train[torch.randint(len(x_train), (batch_size,), generator=g)]
        y = op.measure(x0, g)
        t = torch.randint(0, len(abar), (batch_size,), generator=g)
        xs = 2 * x0 - 1
        x_t = add_noise(xs, torch.randn(xs.shape, generator=g), abar[t].view(-1, 1, 1, 1))
        loss = F.mse_loss(model(x_t, t, y, op), xs)
        train_step(opt, loss, net, ema, ema_decay, losses, bar, step)
    card = {"tasks": list(tasks), "steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
            "seed": seed, "parameters": sum(p.numel() for p in net.parameters()),
            "wall_time_s": round(time.time() - t0, 1), "final_loss_avg200": sum(losses[-200:]) / len(losses[-200:])}
    return ema, card, {task: (op, x_val) for task, (op, _, x_val, _) in data.items()}


@torch.no_grad()
def validation(ram: RAMWarmStart, val: dict, seed: int = 0, times=(999, 111)) -> dict:
    """{task: {'pinv': PSNR of A^dagger y, 't999': PSNR of f_psi at t = 999, ...}} on the validation digits."""
    from ipbench.metrics import psnr
    from .schedules import alpha_bar
    abar = alpha_bar("linear", 1000).float()
    out = {}
    for task, (op, x_val) in val.items():
        g = torch.Generator().manual_seed(seed + 1)
        y = op.measure(x_val, g)
        xs = 2 * x_val - 1
        row = {"pinv": float(psnr((back_projection(y, op) + 1) / 2, x_val).mean())}
        for t in times:
            x_t = add_noise(xs, torch.randn(xs.shape, generator=g), abar[t])
            row[f"t{t}"] = float(psnr(((ram(x_t, t, y, op) + 1) / 2).clamp(0, 1), x_val).mean())
        out[task] = {k: round(v, 2) for k, v in row.items()}
    return out


def main(argv=None):
    import argparse

    from .store import save_weights
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    ema, card, val = train(tuple(args.tasks), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed)
    card["validation_psnr"] = validation(RAMWarmStart(ema), val, args.seed)
    card["n_val"] = len(next(iter(val.values()))[1])
    card["command"] = "python -m ipbench.priors.ram " + " ".join(sys.argv[1:] if argv is None else argv)
    save_weights(ema, args.out, metadata={"card": json.dumps(card)})
    Path(args.out).with_suffix(".md").write_text(model_card(card))
    print(json.dumps(card, indent=1))


def model_card(card: dict) -> str:
    """The Markdown card shipped beside the RAM weights (written next to the trained file; install copies it)."""
    rows = "\n".join(f"| `{task}` | {v['pinv']:.2f} | {v['t999']:.2f} | {v['t111']:.2f} |"
                     for task, v in card["validation_psnr"].items())
    return f"""# Model card: RAM warm start (embedded), tasks {', '.join(f'`{t}`' for t in card['tasks'])}

- **What:** UD2M's warm start f_psi(x_t, y) = b + R_psi([b, x_t, 2 sigma_y], t), b = 2 A^dagger y - 1
  (`priors/ram.py`): a diffusers UNet2DModel of {card['parameters']:,} parameters, one network for all the tasks
  above. It stands in for RAM (Terris et al. 2025, a physics-conditioned DRUNet), which is not available offline.
- **Data:** the embedded training digits less every 20th (the validation digits), measured afresh in every
  batch; the tasks take turns, one per batch; t ~ U{{0..999}} per image.
- **Command:** `{card['command']}`
- **Training:** {card['steps']} batches of {card['batch_size']}, AdamW lr {card['lr']}, EMA {card['ema_decay']},
  seed {card['seed']}; wall time {card['wall_time_s']:.0f} s on 2 CPU cores; final MSE on x_0 (mean of the
  last 200 batches, [-1, 1] units) {card['final_loss_avg200']:.4f}.
- **Validation PSNR** ({card['n_val']} held-out digits, one measurement each; t = 999 is f_psi from y alone;
  t = 111, the last step of UD2M's N = 3 grid, with x_t the digit itself noised to t = 111, as in training,
  so that column is an easier case than sampling, where x_t is the chain's state):

| task | A^dagger y | f_psi, t = 999 | f_psi, t = 111 |
|---|---|---|---|
{rows}
"""


def rewrite_card(path: str) -> None:
    """Regenerate the Markdown card beside the RAM weights from the training card in their metadata."""
    from ipbench.priors.install import rewrite_card as rewrite
    rewrite(path, model_card)


if __name__ == "__main__":
    main()
