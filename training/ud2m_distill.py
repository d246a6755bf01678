"""UD2M distillation (Kemajou Mbakam, Spence, Pereyra; TMLR 2025, arXiv 2507.02686): LoRA on the frozen
pixel DDPM and the learnt lambda, trained so that the K unfolded modules x0_hat = L(x_t, y)
(``methods.ud2m.unfolded_modules``) draw x_0 from p(x_0 | x_t, y):

    L_G = BCE(D(x0_hat, y_up), 1) + |eps_hat(x_t, x0_hat) - eps|^2 + 0.1 LPIPS(x0_hat, x_0)
    L_D = BCE(D(x_0, y_up), 1) / 2 + BCE(D(x0_hat, y_up), 0) / 2 + w_GP E |grad D(a x_0 + (1 - a) x0_hat, y_up)|^2

with one t ~ U{1..999} per batch and the generator and discriminator updated on alternate batches, as the
official code. Differences, all stated in the model cards: LPIPS is the suite's digit LPIPS (VGG there),
the discriminator's logit enters BCE once by default (the official code applies a sigmoid before
BCE-with-logits, which bounds the adversarial term: ``--d-output sigmoid``), B = 0 LoRA initialisation (``priors/lora.py``), and the timestep offsets TAUG / TLAT are left out (they
receive no gradient in the official code). Training digits: the embedded train split less every 20th
digit, which is the validation set (200 digits, class-balanced) on which the card reports PSNR.

    python -m ipbench.training.ud2m_distill --task sr4_mnist --K 3 --steps 2000 --out results/retrain/ud2m_sr4_mnist_k3.safetensors
"""
from __future__ import annotations

import json
import math
import sys
import time
from types import SimpleNamespace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ipbench.priors.diffusion import add_noise, eps_from_x0


class Discriminator(nn.Module):
    """D_phi(x, y_up): conv 3x3 -> 32, then per block [AvgPool 2, conv 3x3, InstanceNorm, LeakyReLU 0.2],
    then linear -> one logit (3 blocks for MNIST in the official code)."""

    def __init__(self, in_channels: int = 2, size: int = 32, widths=None):
        """``widths``: one per block; by default (32, 64, 64) at 32 x 32 (the official MNIST D) and blocks of up
        to 256 channels until 8 x 8 at larger sizes (the suite's choice for ImageNet-256: its official D is not
        in the available sources)."""
        if widths is None:
            n = max(3, int(math.log2(size // 4)))
            widths = (32, 64, 64) if size <= 32 else tuple(min(32 * 2 ** i, 256) for i in range(n))
        super().__init__()
        layers, c = [nn.Conv2d(in_channels, 32, 3, padding=1)], 32
        for w in widths:
            layers += [nn.AvgPool2d(2), nn.Conv2d(c, w, 3, padding=1), nn.InstanceNorm2d(w, affine=True),
                       nn.LeakyReLU(0.2)]
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c * (size // 2 ** len(widths)) ** 2, 1)

    def forward(self, x: torch.Tensor, y_up: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(torch.cat([x, y_up], 1)).flatten(1)).flatten()


def upsampled(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """y in [-1, 1] on x's grid (bilinear for SR, as the official discriminator input)."""
    y = 2 * y - 1
    if y.shape[-2:] != like.shape[-2:]:
        y = F.interpolate(y, size=like.shape[-2:], mode="bilinear", align_corners=False)
    return y


def gradient_penalty(D: Discriminator, x0, x0_hat, y_up, g) -> torch.Tensor:
    a = torch.rand(len(x0), 1, 1, 1, generator=g).to(x0.device)
    mix = (a * x0 + (1 - a) * x0_hat).requires_grad_(True)
    grad, = torch.autograd.grad(D(mix, y_up).sum(), mix, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def distill(prior, op, x_train: torch.Tensor, K: int, *, steps: int, batch_size: int = 32, lr: float = 1e-4,
            w_l2: float = 1.0, w_ps: float = 0.1, w_gp: float = 0.01, rank: int = 5, alpha: float = 1.5,
            warm_start: str = "official", lpips=None, seed: int = 0, d_output: str = "logit", ram=None,
            ram_lr_factor: float = 0.1, bf16: bool = False) -> tuple[dict, dict]:
    """Train on [0, 1] digits ``x_train``; return the adapter's tensors (LoRA + ``psi.lam``, + ``ram.*`` with
    ``warm_start='ram'``: the RAM network ``ram``, fine-tuned jointly at ``ram_lr_factor`` x lr) and a card.
    ``steps`` counts batches (generator and discriminator batches alternate). ``d_output='sigmoid'`` feeds
    BCE-with-logits the sigmoid of D's logit, as the official code does (a bounded, much weaker adversarial
    gradient); 'logit' is the paper's BCE. ``bf16``: the DDPM's forward passes under bfloat16 autocast (LoRA,
    lambda, discriminator, optimisers and the prox stay float32), for speed."""
    if d_output not in ("logit", "sigmoid"):
        raise ValueError(f"d_output must be 'logit' or 'sigmoid', got {d_output!r}")
    bce = lambda logit, target: F.binary_cross_entropy_with_logits(
        logit if d_output == "logit" else torch.sigmoid(logit), torch.full_like(logit, float(target)))
    from ipbench.methods.ud2m import f_psi, official_warm_start, unfolded_modules
    warm_start = official_warm_start(op) if warm_start == "official" else warm_start     # the card names the form
    from ipbench.priors.lora import add_lora, lora_state
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    device = next(prior.unet.parameters()).device
    g_net = g if device.type == "cpu" else torch.Generator(device).manual_seed(seed)   # the modules' noise
    lora = add_lora(prior.unet, rank, alpha)
    prior.unet.train()
    log_lam = nn.Parameter(torch.zeros((), device=device))                # lambda = exp(LambdaSIG), from 1
    D = Discriminator(in_channels=2 * x_train.shape[1], size=x_train.shape[-1]).to(device)
    ram_params = list(ram.net.parameters()) if warm_start == "ram" else []
    if ram_params:
        ram.net.train().requires_grad_(True)
    opt_g = torch.optim.AdamW([{"params": lora + [log_lam]}, {"params": ram_params, "lr": ram_lr_factor * lr}],
                              lr=lr, weight_decay=0.01)
    opt_d = torch.optim.AdamW(D.parameters(), lr=lr, weight_decay=0.01)
    abar = prior.abar
    prior.bf16 = bf16
    t0, hist = time.time(), {"l2": [], "adv": [], "ps": [], "d": []}
    for step in (bar := tqdm(range(steps), desc=f"UD2M distillation, K = {K}")):
        x0 = x_train[torch.randint(len(x_train), (batch_size,), generator=g)].cpu()
        y = op.measure(x0, g)
        t = int(torch.randint(1, len(abar), (), generator=g))
        eps = torch.randn(x0.shape, generator=g)
        x0, y, eps = x0.to(device), y.to(device), eps.to(device)      # drawn on the CPU: the same on any device
        xs = 2 * x0 - 1
        x_t = add_noise(xs, eps, abar[t])
        y_up = upsampled(y, xs)
        generator_turn = step % 2 == 0
        with torch.set_grad_enabled(generator_turn):
            x0_hat = unfolded_modules(x_t, t, y, op, prior, K, g_net, log_lam.exp(),
                                      f_psi(y, op, warm_start, x_t, t, ram, abar))
        if generator_turn:
            adv = bce(D(x0_hat, y_up), 1)
            l2 = F.mse_loss(eps_from_x0(x_t, x0_hat, abar[t]), eps)
            ps = lpips.distance((x0_hat + 1) / 2, x0).mean() if lpips is not None else torch.zeros(())
            loss = adv + w_l2 * l2 + w_ps * ps
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lora + [log_lam] + ram_params, 1.0)
            opt_g.step()
            for k, v in (("adv", adv), ("l2", l2), ("ps", ps)):
                hist[k].append(v.item())
        else:
            x0_hat = x0_hat.detach()
            loss = 0.5 * (bce(D(xs, y_up), 1) + bce(D(x0_hat, y_up), 0))
            loss = loss + w_gp * gradient_penalty(D, xs, x0_hat, y_up, g)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            hist["d"].append(loss.item())
        if step % 20 == 1:
            bar.set_postfix(l2=f"{_tail(hist['l2']):.4f}", lam=f"{log_lam.exp().item():.3f}")
    prior.unet.eval().requires_grad_(False)
    prior.bf16 = False
    tensors = {**lora_state(prior.unet), "psi.lam": log_lam.detach().exp().reshape(1)}
    if ram_params:
        ram.net.eval().requires_grad_(False)
        tensors.update({f"ram.{k}": v for k, v in ram.net.state_dict().items()})
    card = {"K": K, "steps": steps, "batch_size": batch_size, "lr": lr, "w_l2": w_l2, "w_ps": w_ps, "w_gp": w_gp,
            "rank": rank, "alpha": alpha, "warm_start": warm_start, "seed": seed, "d_output": d_output,
            "precision": "bf16 autocast" if bf16 else "float32",
            **({"ram_lr_factor": ram_lr_factor} if ram_params else {}),
            "lora_parameters": sum(p.numel() for p in lora), "lam": log_lam.exp().item(),
            "wall_time_s": round(time.time() - t0, 1),
            **{f"final_{k}_avg100": _tail(v) for k, v in hist.items()}}
    return tensors, card


def _tail(values: list, n: int = 100) -> float:
    return sum(values[-n:]) / max(len(values[-n:]), 1)


@torch.no_grad()
def validation_psnr(prior, op, x_val: torch.Tensor, K: int, N: int, lam: float, warm_start: str, seed: int = 0) -> float:
    """Mean PSNR of one UD2M sample per validation digit (the official code selects checkpoints on it)."""
    from ipbench.methods import ud2m
    from ipbench.metrics import psnr
    g = torch.Generator().manual_seed(seed + 1)
    y = op.measure(x_val.cpu(), g).to(x_val.device)
    g_net = g if x_val.device.type == "cpu" else torch.Generator(x_val.device).manual_seed(seed + 1)
    x_hat = ud2m.solve(y, op, prior, generator=g_net, K=K, N=N, lam=lam, warm_start=warm_start)
    return float(psnr(x_hat, x_val).mean())


def main(argv=None):
    from ipbench.methods.ud2m import WARM_STARTS
    from ipbench.priors.pixel_ddpm import load_pixel_prior
    from ipbench.store.catalog import resolve
    from ipbench.store.files import save_tensors

    from .common import digit_feature_space, task_data, task_parser
    ap = task_parser(__doc__, steps=2000, lr=1e-4)
    ap.add_argument("--K", type=int, default=3)
    ap.add_argument("--warm-start", default="official", choices=list(WARM_STARTS),
                    help="f_psi (methods/ud2m.py): 'official' = y for deblurring and JPEG, the blend for SR / inpainting")
    ap.add_argument("--ram", default="ram_digits", help="the shipped RAM network to start from (--warm-start ram)")
    ap.add_argument("--d-output", default="logit", choices=["logit", "sigmoid"],
                    help="BCE on D's logit (the paper) or on its sigmoid (the official code)")
    ap.add_argument("--bf16", action="store_true", help="the DDPM's forward passes under bfloat16 autocast (faster on CPU)")
    ap.add_argument("--profile", default="embedded", choices=["embedded", "paper"],
                    help="paper: ADM (the profile's pixel prior) on training images from --images, LPIPS-VGG")
    ap.add_argument("--images", default=None, help="paper: a folder (or archive) of training images, e.g. "
                    "ImageNet's train split extracted (its licence needs a login: placed by hand)")
    ap.add_argument("--n-train", type=int, default=5000, help="paper: training images read (the first, sorted)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.profile == "paper":
        op, x_train, x_val, base, prior, fs = paper_setup(args)
    else:
        op, x_train, x_val, _ = task_data(args.task)
        fs = digit_feature_space()
        base = resolve(args.base)
        prior = load_pixel_prior(base)
    if args.warm_start == "ram":
        from ipbench.priors.ram import load_ram
        prior.ram = load_ram(resolve(args.ram))
    before = validation_psnr(prior, op, x_val, args.K, 3, 1.0, args.warm_start, args.seed)
    tensors, card = distill(prior, op, x_train, args.K, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            warm_start=args.warm_start, lpips=fs.lpips, seed=args.seed, d_output=args.d_output,
                            ram=getattr(prior, "ram", None), bf16=args.bf16)
    if args.warm_start == "ram":
        card.update(ram=args.ram, ram_sha256=resolve(args.ram)["sha256"])
    card.update(task=args.task, profile=args.profile, base=base.get("name", args.base), base_sha256=base["sha256"],
                n_train=len(x_train), n_val=len(x_val), val_psnr_untrained_N3=round(before, 3),
                val_psnr_N3=round(validation_psnr(prior, op, x_val, args.K, 3, card["lam"], args.warm_start,
                                                  args.seed), 3))
    card["command"] = "python -m ipbench.training.ud2m_distill " + " ".join(sys.argv[1:] if argv is None else argv)
    save_tensors(tensors, args.out, metadata={"card": json.dumps(card)})
    Path(args.out).with_suffix(".md").write_text(model_card(card))
    print(json.dumps(card, indent=1))


def paper_setup(args):
    """The paper profile's task operator, training / validation images (every 20th held out), the ADM prior the
    profile names (fetched and verified) and its LPIPS (VGG, fetched): UD2M's ImageNet distillation on a GPU."""
    from ipbench import physics
    from ipbench.datasets.paper import load_images
    from ipbench.priors.paper import file_hashes
    from ipbench.suite.config import degrade_spec, select
    from ipbench.suite.priors import load_prior

    from .common import holdout
    if not args.images:
        raise SystemExit("--profile paper needs --images: a folder or archive of training images")
    cfg = select({"profile": "paper"})
    spec = degrade_spec(cfg, args.task)["task_spec"]
    if spec.get("family", "pixel") != "pixel":
        raise SystemExit(f"UD2M distils a pixel prior; task {args.task!r} is of the {spec['family']} family")
    size = spec["image_size"]
    x = load_images({"members": ["*.JPEG", "*.jpeg", "*.jpg", "*.png"], "image_size": size}, args.images, args.n_train)
    op = physics.build_operator(spec["operator"], x.shape[1:], spec["sigma_y"])
    name = cfg["priors"]["pixel"]
    prior = load_prior("pixel", {"pixel": name}).to(args.device)
    prior.unet.float()              # LoRA trains in float32 (the fp16 torso is the sampler's choice)
    lpips = paper_lpips(cfg["features"], args.device)
    base = {"name": name, "sha256": "; ".join(f"{f} {h}" for f, h in file_hashes(name).items())}
    return (op, *(v.to(args.device) for v in holdout(x)), base, prior, SimpleNamespace(lpips=lpips))


def paper_lpips(features: dict, device: str = "cpu"):
    """The paper profile's LPIPS (the ``lpips`` package, its VGG-16 backbone from the fetched file)."""
    from ipbench.metrics.lpips import LPIPS
    from ipbench.priors.paper import materialize
    from ipbench.store.catalog import checkpoint
    name = features["lpips_checkpoint"]
    lpips = LPIPS(net=features.get("lpips_net", "vgg"), backbone_weights=str(materialize(name) / checkpoint(name)["files"][0]))
    lpips.model.to(device)
    return lpips


def model_card(card: dict) -> str:
    """The Markdown card shipped beside an adapter (written next to the trained file; install copies it)."""
    from .commands import current_command
    ram = card.get("warm_start") == "ram"
    return f"""# Model card: UD2M{'+RAM' if ram else ''} adapter, task `{card['task']}`, K = {card['K']}

- **What:** LoRA (rank {card['rank']}, alpha {card['alpha']}, {card['lora_parameters']:,} parameters, on the attention
  projections of the frozen pixel DDPM `{card['base']}`, sha256 `{card['base_sha256'][:12]}...`) and the learnt
  lambda of UD2M's {card['K']} unfolded LATINO modules, distilled by `training/ud2m_distill.py` (L2 consistency +
  adversarial + {card['w_ps']} x digit LPIPS; discriminator conditioned on y, squared-gradient penalty
  {card['w_gp']}). Warm start f_psi: `{card['warm_start']}`{ram_text(card)}.
- **Data:** {card['n_train']} training digits (the embedded train split less every 20th digit); validation:
  the {card['n_val']} held-out digits.
- **Command:** `{current_command(card['command'])}`
- **Training:** {card['steps']} batches of {card['batch_size']} (generator and discriminator alternate), AdamW lr
  {card['lr']}, seed {card['seed']}, {card.get('precision', 'float32')}; wall time {card['wall_time_s']:.0f} s on 2 CPU cores. Final losses (mean of the
  last 100 of each): L2 {card['final_l2_avg100']:.4f}, adversarial {card['final_adv_avg100']:.3f}, LPIPS
  {card['final_ps_avg100']:.4f}, discriminator {card['final_d_avg100']:.3f}. Learnt lambda: {card['lam']:.4f}.
- **Validation PSNR (one sample per digit, N = 3):** {card['val_psnr_N3']:.2f} dB distilled; {card['val_psnr_untrained_N3']:.2f} dB
  with the plain prior{' and the pretrained RAM network' if ram else ''} (the same modules before distillation).
- **Choices:** adversarial BCE on {'the sigmoid of D (the official code)' if card.get('d_output') == 'sigmoid' else "D's logit (the paper)"};
  lr {card['lr']}, both from pilots on `sr4_mnist` (the official 1e-4 left a 300-batch pilot's validation PSNR
  unchanged at this scale; with sigmoid-BCE and lr 1e-3 a 1,500-batch pilot at K = 1 reached 14.14 dB and
  conditional W2 3.32 on the validation digits, against 13.84 dB / 3.64 with the paper's BCE and 13.21 dB /
  3.82 untrained).
- **Scale:** the official MNIST run trains 400 epochs of 16,000 samples; this one sees
  {card['steps'] * card['batch_size']:,} samples (CPU budget), so it is a short distillation. The wall time
  is as measured, with whatever else shared the two cores at the time.
"""


def ram_text(card: dict) -> str:
    if card.get("warm_start") != "ram":
        return ""
    return (f" (the RAM network `{card['ram']}`, sha256 `{card['ram_sha256'][:12]}...`, `priors/ram.py`, fine-tuned "
            f"jointly at {card['ram_lr_factor']} x lr, as the official code; the fine-tuned copy is in this file)")


def rewrite_card(path: str) -> None:
    """Regenerate the Markdown card beside an adapter file from the training card in its metadata."""
    from ipbench.training.install import rewrite_card as rewrite
    rewrite(path, model_card)


if __name__ == "__main__":
    main()
