"""The embedded video latent diffusion model (mirrors Wan2.1 T2V, the base of LVTINO's video consistency model).

The image latent DM (``latent_dm``) inflated to clips as AnimateDiff does: diffusers ``UNetMotionModel`` keeps
the image U-Net's spatial layers (run per frame) and inserts a temporal transformer after each of them (motion
modules, learned positional embeddings up to 32 frames, zero-initialised outputs), on the autoencoder's
4 x 8 x 8 latents of every frame. Same schedule (scaled-linear, T = 1000) and epsilon prediction; captions
"a video of a handwritten digit k", replaced by ``GENERIC_VIDEO_PROMPT`` 10% and by the empty prompt 10% of
the time. Clips are (B, T, C, h, w), the suite's video layout.

Train: ``python -m ipbench.training.video_dm --out priors/weights/video_dm.safetensors``.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch
from diffusers import MotionAdapter, UNetMotionModel

from .latent_dm import build_unet

MOTION = dict(block_out_channels=(64, 64), motion_layers_per_block=1, motion_num_attention_heads=4,
              motion_norm_num_groups=16, motion_max_seq_length=32, use_motion_mid_block=True)


class VideoUNet(torch.nn.Module):
    """``UNetMotionModel`` on (B, T, C, h, w) clips with one condition (B, L, D) per clip (shared by its frames)."""

    def __init__(self, image_unet=None):
        super().__init__()
        self.net = UNetMotionModel.from_unet2d(image_unet if image_unet is not None else build_unet(),
                                               MotionAdapter(**MOTION))

    @property
    def dtype(self):
        return self.net.dtype

    def forward(self, z, t, encoder_hidden_states):
        frames = z.shape[1]
        c = encoder_hidden_states.repeat_interleave(frames, dim=0)
        out = self.net(z.transpose(1, 2), t, encoder_hidden_states=c).sample
        return SimpleNamespace(sample=out.transpose(1, 2))


def build_video_unet(image_unet=None) -> VideoUNet:
    return VideoUNet(image_unet)
