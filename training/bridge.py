"""Train and load the embedded I2SB bridges: one network per task, initialised from the pixel DDPM (as I2SB
initialises from ADM), fitted on (clean, degraded) pairs of the training digits (``priors/bridge.py``).

The degraded image x_1 is the task's measurement, noise included (the test-time degradation), at the
image size. Deblurring and inpainting use the OT-ODE with beta_max = 1, the other tasks beta_max = 0.3, as
the official training scripts.

    python -m ipbench.training.bridge --task px_sr4 --steps 3000 --out results/retrain/i2sb_px_sr4.safetensors
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from ipbench.priors.bridge import BridgePrior, degraded_image

OT_ODE_OPERATORS = ("gaussian_blur", "uniform_blur", "inpainting")


def bridge_setting(operator: str) -> dict:
    ot = operator in OT_ODE_OPERATORS
    return {"beta_max": 1.0 if ot else 0.3, "ot_ode": ot}


def train_bridge(net: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor, prior: BridgePrior, *, steps: int,
                 batch_size: int = 32, lr: float = 1e-4, ema_decay: float = 0.999, seed: int = 0):
    """Fit eps_theta on pairs (x0[i], x1[i]) of [-1, 1] images; return the EMA network and a card."""
    import copy
    import time

    from tqdm import tqdm

    from .common import train_step
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net.train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    t0, losses = time.time(), []
    for step in (bar := tqdm(range(steps), desc="I2SB bridge")):
        idx = torch.randint(len(x0), (batch_size,), generator=g)
        n = torch.randint(1, prior.N, (batch_size,), generator=g)
        a, b = x0[idx], x1[idx]
        x_n = prior.q_sample(a, b, n, torch.randn(a.shape, generator=g))
        target = (x_n - a) / prior.sigma2[n].sqrt().view(-1, 1, 1, 1)
        loss = torch.nn.functional.mse_loss(net(x_n, n).sample, target)
        train_step(opt, loss, net, ema, ema_decay, losses, bar, step)
    card = {"steps": steps, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay, "seed": seed,
            "beta_max": prior.beta_max, "ot_ode": prior.ot_ode, "wall_time_s": round(time.time() - t0, 1),
            "final_loss_avg200": sum(losses[-200:]) / len(losses[-200:])}
    return ema, card


def validation_psnr(prior: BridgePrior, op, x_val: torch.Tensor, nfe: int = 100, seed: int = 0) -> float:
    from ipbench.baselines import i2sb
    from ipbench.metrics import psnr
    g = torch.Generator().manual_seed(seed + 1)
    y = op.measure(x_val, g)
    return float(psnr(i2sb.solve(y, op, prior, generator=g, nfe=nfe), x_val).mean())


def main(argv=None):
    from ipbench.priors.pixel_ddpm import architecture, load_pixel_prior
    from ipbench.store.catalog import resolve
    from ipbench.store.files import save_weights

    from .common import task_data, task_parser
    args = task_parser(__doc__, steps=3000, lr=1e-4).parse_args(argv)
    op, x_train, x_val, spec = task_data(args.task)
    g = torch.Generator().manual_seed(args.seed)
    x1 = torch.cat([degraded_image(op.measure(b, g), b.shape) for b in x_train.split(500)])
    setting = bridge_setting(spec["operator"]["name"])
    base = resolve(args.base)
    prior = BridgePrior(load_pixel_prior(base).unet, **setting)
    ema, card = train_bridge(prior.net, 2 * x_train - 1, x1, prior, steps=args.steps, batch_size=args.batch_size,
                             lr=args.lr, seed=args.seed)
    card.update(task=args.task, init=args.base, init_sha256=base["sha256"],
                n_train=len(x_train), n_val=len(x_val),
                val_psnr_nfe100=round(validation_psnr(BridgePrior(ema, card["beta_max"], card["ot_ode"]), op, x_val), 3))
    card["command"] = "python -m ipbench.training.bridge " + " ".join(sys.argv[1:] if argv is None else argv)
    save_weights(ema, args.out, metadata={"card": json.dumps(card), "config": json.dumps(architecture(prior.net))})
    Path(args.out).with_suffix(".md").write_text(model_card(card))
    print(json.dumps(card, indent=1))


def model_card(card: dict) -> str:
    """The Markdown card shipped beside a bridge (written next to the trained file; install copies it)."""
    from .commands import current_command
    schedule = "OT-ODE, " if card["ot_ode"] else ""
    return f"""# Model card: I2SB bridge, task `{card['task']}`

- **What:** the pixel DDPM's UNet (same architecture), initialised from `{card['init']}` (sha256
  `{card['init_sha256'][:12]}...`) and fine-tuned as an I2SB bridge from the task's degraded image x_1 (the
  measurement with its noise, at the image size) to the clean digit; symmetric beta schedule,
  {schedule}beta_max = {card['beta_max']} (the official training scripts' choice for this kind of operator).
  Used by I2SB and CDDB (`baselines/i2sb.py`, `baselines/cddb.py`).
- **Data:** {card['n_train']} training digits (the embedded train split less every 20th digit), one fixed
  measurement each; validation: the {card['n_val']} held-out digits.
- **Command:** `{current_command(card['command'])}`
- **Training:** {card['steps']} batches of {card['batch_size']}, AdamW lr {card['lr']}, EMA {card['ema_decay']},
  seed {card['seed']}; wall time {card['wall_time_s']:.0f} s on 2 CPU cores; final loss (mean of the last 200)
  {card['final_loss_avg200']:.4f} (the wall time is as measured, with whatever else shared the two cores).
- **Validation PSNR (I2SB, 100 steps, one sample per digit):** {card['val_psnr_nfe100']:.2f} dB.
"""


def rewrite_card(path: str) -> None:
    """Regenerate the Markdown card beside a bridge file from the training card in its metadata."""
    from ipbench.training.install import rewrite_card as rewrite
    rewrite(path, model_card)


if __name__ == "__main__":
    main()
