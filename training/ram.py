"""Training the suite's RAM stand-in (``ipbench.priors.ram``) on the pixel tasks; its model card.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ipbench.priors.diffusion import add_noise
from ipbench.priors.ram import TASKS, RAMWarmStart, back_projection, build_net


def train(tasks=TASKS, *, steps: int, batch_size: int = 32, lr: float = 1e-3, ema_decay: float = 0.999,
          seed: int = 0) -> tuple[torch.nn.Module, dict, dict]:
    """Fit R_psi on the training digits of every task in turn; return the EMA network, its card and the
    per-task validation data."""
    import copy

    from tqdm import tqdm

    from ipbench.priors.schedules import alpha_bar

    from .common import task_data, train_step
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
    from ipbench.priors.schedules import alpha_bar
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

    from ipbench.store.files import save_weights
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
    card["command"] = "python -m ipbench.training.ram " + " ".join(sys.argv[1:] if argv is None else argv)
    save_weights(ema, args.out, metadata={"card": json.dumps(card)})
    Path(args.out).with_suffix(".md").write_text(model_card(card))
    print(json.dumps(card, indent=1))


def model_card(card: dict) -> str:
    """The Markdown card shipped beside the RAM weights (written next to the trained file; install copies it)."""
    from .commands import current_command
    rows = "\n".join(f"| `{task}` | {v['pinv']:.2f} | {v['t999']:.2f} | {v['t111']:.2f} |"
                     for task, v in card["validation_psnr"].items())
    return f"""# Model card: RAM warm start (embedded), tasks {', '.join(f'`{t}`' for t in card['tasks'])}

- **What:** UD2M's warm start f_psi(x_t, y) = b + R_psi([b, x_t, 2 sigma_y], t), b = 2 A^dagger y - 1
  (`priors/ram.py`): a diffusers UNet2DModel of {card['parameters']:,} parameters, one network for all the tasks
  above. It stands in for RAM (Terris et al. 2025, a physics-conditioned DRUNet), which is not available offline.
- **Data:** the embedded training digits less every 20th (the validation digits), measured afresh in every
  batch; the tasks take turns, one per batch; t ~ U{{0..999}} per image.
- **Command:** `{current_command(card['command'])}`
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
    from ipbench.training.install import rewrite_card as rewrite
    rewrite(path, model_card)


if __name__ == "__main__":
    main()
