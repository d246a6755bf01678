"""The embedded latent family's autoencoder: diffusers ``AutoencoderKL`` with factor 8 and 4 latent
channels (as Stable Diffusion's), on 64 x 64 digits: x in [-1, 1] (1 x 64 x 64) <-> z (4 x 8 x 8).

``encode`` returns the posterior mean times ``scaling_factor`` (1 / std of the training latents,
SD's 0.18215 convention); ``decode`` inverts the scaling.
Train: ``python -m ipbench.training.autoencoder --out priors/weights/autoencoder.safetensors``.
"""
from __future__ import annotations

from diffusers import AutoencoderKL

# sized for 2 CPU cores: the 64 x 64 level, the costliest, has 16 channels
CONFIG = dict(in_channels=1, out_channels=1, latent_channels=4, sample_size=64, layers_per_block=1,
              block_out_channels=(16, 32, 64, 64),
              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
              norm_num_groups=8)


def build_autoencoder(**overrides) -> AutoencoderKL:
    return AutoencoderKL(**{**CONFIG, **overrides})


def load_autoencoder(ck: dict) -> tuple[AutoencoderKL, float]:
    """The autoencoder of a resolved checkpoint (sha256-checked) and its latent scaling factor (a card field)."""
    from ipbench.store.files import load_weights
    return load_weights(build_autoencoder(), ck["path"], ck["sha256"]), float(ck["scaling_factor"])
