import zlib

import numpy as np
import pytest
import torch


def dense(fn, in_shape) -> np.ndarray:
    """Dense matrix of a linear map on tensors of ``in_shape`` (one item), built column by column."""
    n = int(np.prod(in_shape))
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    cols = torch.stack([fn(b.unsqueeze(0)).squeeze(0).reshape(-1) for b in basis], 1)
    return cols.numpy()


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


class FixedTokens:
    """A stand-in text encoder: a fixed random embedding per word, 6 tokens of width 8."""

    def tokens(self, prompts):
        out = []
        for p in prompts:
            words = (["[CLS]"] + p.split() + ["[PAD]"] * 6)[:6]
            out.append(torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(zlib.crc32(w.encode())))
                                    for w in words]))
        return torch.stack(out)


class TinyImageTower(torch.nn.Module):
    """A stand-in image-text model: unit vectors in the 8-d token space of ``FixedTokens``."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(64, 8)

    def forward(self, x):
        return torch.nn.functional.normalize(self.proj(x.flatten(1)), dim=-1)


@pytest.fixture(scope="session")
def tiny_consistency_prior():
    """A tiny random latent consistency prior: 1 x 8 x 8 images <-> 4 x 4 x 4 latents."""
    from ipbench.priors.latent import ConsistencyPrior
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.manual_seed(0)
    vae = AutoencoderKL(in_channels=1, out_channels=1, latent_channels=4, block_out_channels=(8, 8),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, layers_per_block=1)
    unet = UNet2DConditionModel(sample_size=4, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=8,
                                attention_head_dim=2, norm_num_groups=4)
    prior = ConsistencyPrior(vae, unet, 1.0, FixedTokens(), image_encoder=TinyImageTower())
    prior.generic_prompt = "a photo of a handwritten digit"     # as the digit prior's loader sets it
    return prior
