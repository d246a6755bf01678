"""The embedded pixel prior: an epsilon-prediction DDPM on 32 x 32 digits (mirrors ADM ImageNet-256).

diffusers ``UNet2DModel`` behind the pixel-diffusion protocol: ``eps(x_t, t)`` on images in
[-1, 1], the linear beta schedule 1e-4 .. 0.02 with T = 1000 (as ADM), and an NFE counter.
Train: ``python -m ipbench.priors.pixel_ddpm --out priors/weights/pixel_ddpm.safetensors``.
"""
from __future__ import annotations

import argparse
import json

import torch
from diffusers import UNet2DModel

from .calls import CallLog
from .schedules import alpha_bar

# sized to train in about 40 minutes on 2 CPU cores: 1.1 M parameters, attention at 8 x 8
CONFIG = dict(sample_size=32, in_channels=1, out_channels=1, layers_per_block=1,
              block_out_channels=(32, 64, 64),
              down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
              up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
              attention_head_dim=16, norm_num_groups=8)


def build_unet(**overrides) -> UNet2DModel:
    return UNet2DModel(**{**CONFIG, **overrides})


def architecture(unet: UNet2DModel) -> dict:
    """The keys of ``CONFIG`` as ``unet`` has them: what a saved pixel checkpoint names in its metadata."""
    return {k: unet.config[k] for k in CONFIG}


def unet_config(path) -> dict:
    """The UNet config a pixel checkpoint was saved with (its metadata; ``CONFIG`` for files without)."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta["config"]) if "config" in meta else dict(CONFIG)


def load_unet(path, sha256: str | None) -> UNet2DModel:
    """A pixel UNet (the DDPM or a network fine-tuned from it) of the architecture its file names."""
    from .store import load_weights, verify_sha256
    verify_sha256(path, sha256)
    return load_weights(UNet2DModel(**unet_config(path)), path, None)


class PixelDiffusionPrior:
    """eps(x_t, t) of an epsilon-prediction network, with its schedule and an NFE counter.

    ``nfe`` counts network evaluations per image (a call on a batch of B images adds B). ``bf16 = True`` runs
    the network under bfloat16 autocast and returns float32 (distillation uses it for speed; solvers do not).
    >>> prior = PixelDiffusionPrior(build_unet(block_out_channels=(8, 8, 8), norm_num_groups=4, attention_head_dim=4))
    >>> prior.eps(torch.zeros(2, 1, 32, 32), torch.tensor([999, 999])).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, unet: torch.nn.Module, schedule: str = "linear", T: int = 1000, adm: bool = False,
                 weights_sha256: str | None = None):
        self.unet = unet.eval()
        self.weights_sha256 = weights_sha256    # the pinned file it was loaded from (adapters check their base)
        self.abar = alpha_bar(schedule, T).float()
        self.T = T
        self.adm = adm
        self.nfe = 0
        self.calls = CallLog()
        self.bf16 = False

    def eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        self.nfe += x_t.shape[0]
        self.calls.record("denoiser", lambda x: self._eps(x, 500), x_t)
        return self._eps(x_t, t)

    def _eps(self, x_t: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0])
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.adm:  # guided-diffusion's UNet (deepinv DiffUNet): [eps, variance] on the channel axis
                out = self.unet(x_t, t, type_t="timestep")[:, : x_t.shape[1]]
            else:
                out = self.unet(x_t, t).sample
        return out.to(x_t.dtype)

    def to(self, device) -> "PixelDiffusionPrior":
        self.unet.to(device)
        self.abar = self.abar.to(device)
        return self


def load_pixel_prior(name: str = "pixel_ddpm") -> PixelDiffusionPrior:
    """The shipped pixel prior, sha256-checked (config/checkpoints.yaml)."""
    from ipbench.suite.config import ROOT, checkpoint
    ck = checkpoint(name)
    return PixelDiffusionPrior(load_unet(ROOT / ck["path"], ck["sha256"]), weights_sha256=ck["sha256"])


def train(steps: int, batch_size: int = 32, lr: float = 5e-4, ema_decay: float = 0.999, seed: int = 0,
          init: str | None = None, bf16: bool = False, **arch):
    """``init``: continue from saved weights (the EMA of an earlier run, its architecture) instead of a
    fresh UNet of ``CONFIG`` with ``arch`` overrides (``layers_per_block``, ``block_out_channels``)."""
    from ipbench.datasets import digits
    from .training import train_epsilon
    torch.manual_seed(seed)
    x, _ = digits("train", 32)
    unet = load_unet(init, None).train() if init else build_unet(**arch)
    if init and any(json.dumps(unet.config[k]) != json.dumps(v) for k, v in arch.items()):
        raise ValueError(f"--init {init} has the architecture {dict((k, unet.config[k]) for k in arch)}, not {arch}")
    ema, card = train_epsilon(unet, x * 2 - 1, alpha_bar("linear"), steps=steps, batch_size=batch_size, lr=lr,
                              ema_decay=ema_decay, seed=seed, desc="pixel DDPM", bf16=bf16)
    return ema, card, architecture(unet)


def main(argv=None):
    from .store import save_weights
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="continue from these weights")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--channels", type=lambda s: tuple(int(c) for c in s.split(",")), default=None,
                    help="block_out_channels, e.g. 32,64,64 (default: CONFIG's)")
    ap.add_argument("--layers-per-block", type=int, default=None, help="res-blocks per level (default: CONFIG's)")
    ap.add_argument("--bf16", action="store_true", help="forward pass under bfloat16 autocast (faster on CPU)")
    args = ap.parse_args(argv)
    arch = {k: v for k, v in (("block_out_channels", args.channels), ("layers_per_block", args.layers_per_block))
            if v is not None}
    ema, card, config = train(args.steps, args.batch_size, lr=args.lr, seed=args.seed, init=args.init, bf16=args.bf16, **arch)
    card["init"] = args.init
    save_weights(ema, args.out, metadata={"card": json.dumps(card), "config": json.dumps(config)})
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
