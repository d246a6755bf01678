"""The embedded pixel prior: an epsilon-prediction DDPM on 32 x 32 digits (mirrors ADM ImageNet-256).

diffusers ``UNet2DModel`` behind the pixel-diffusion protocol: ``eps(x_t, t)`` on images in
[-1, 1], the linear beta schedule 1e-4 .. 0.02 with T = 1000 (as ADM), and an NFE counter.
Train: ``python -m ipbench.training.pixel_ddpm --out results/retrain/pixel_ddpm.safetensors``.
"""
from __future__ import annotations

import json

import torch
from diffusers import UNet2DModel

from .calls import CallLog
from .precision import autocast
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
    from ipbench.store.files import load_weights, verify_sha256
    verify_sha256(path, sha256)
    return load_weights(UNet2DModel(**unet_config(path)), path, None)


class PixelDiffusionPrior:
    """eps(x_t, t) of an epsilon-prediction network, with its schedule and an NFE counter.

    ``nfe`` counts network evaluations per image (a call on a batch of B images adds B). ``bf16 = True`` runs
    the network under bfloat16 autocast and returns float32 (``priors/precision.py``).
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
        with autocast(x_t, self.bf16):
            if self.adm:  # guided-diffusion's UNet (deepinv DiffUNet): [eps, variance] on the channel axis
                out = self.unet(x_t, t, type_t="timestep")[:, : x_t.shape[1]]
            else:
                out = self.unet(x_t, t).sample
        return out.to(x_t.dtype)

    def to(self, device) -> "PixelDiffusionPrior":
        self.unet.to(device)
        self.abar = self.abar.to(device)
        return self


def load_pixel_prior(ck: dict) -> PixelDiffusionPrior:
    """A pixel prior from its resolved checkpoint (``store.catalog.resolve``: path, sha256), sha256-checked."""
    return PixelDiffusionPrior(load_unet(ck["path"], ck["sha256"]), weights_sha256=ck["sha256"])
