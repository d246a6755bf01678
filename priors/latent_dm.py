"""The embedded text-conditioned latent diffusion model (mirrors Stable Diffusion).

diffusers ``UNet2DConditionModel`` on the autoencoder's 4 x 8 x 8 latents, cross-attending to
the frozen all-MiniLM-L6-v2 token embeddings of the caption, with Stable Diffusion's
scaled-linear schedule (beta 0.00085 .. 0.012, T = 1000) and epsilon prediction. Captions are
replaced by the generic prompt "a photo of a handwritten digit" 10% of the time and by the empty
prompt 10% of the time (classifier-free guidance).
Train: ``python -m ipbench.training.latent_dm --out priors/weights/latent_dm.safetensors``.
"""
from __future__ import annotations

from diffusers import UNet2DConditionModel

from .text import DIM

GENERIC_PROMPT = "a photo of a handwritten digit"
CONFIG = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
              block_out_channels=(64, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=DIM,
              attention_head_dim=8, norm_num_groups=16)


def build_unet(**overrides) -> UNet2DConditionModel:
    return UNet2DConditionModel(**{**CONFIG, **overrides})


def load_latent_dm(ck: dict, consistency: bool = False):
    """The latent DM of a resolved checkpoint behind the latent protocol (``consistency``: its consistency
    distillation, adding x0(z_t, t, c)), with the autoencoder the checkpoint needs; every file sha256-checked.
    Its starting prompt is ``GENERIC_PROMPT``."""
    from ipbench.store.files import load_weights

    from .autoencoder import load_autoencoder
    from .latent import ConsistencyPrior, LatentDiffusionPrior
    from .text import TextEncoder
    vae, scaling = load_autoencoder(ck["needs"]["autoencoder"])
    unet = load_weights(build_unet(), ck["path"], ck["sha256"])
    prior = (ConsistencyPrior if consistency else LatentDiffusionPrior)(vae, unet, scaling, TextEncoder())
    prior.generic_prompt = GENERIC_PROMPT
    return prior
