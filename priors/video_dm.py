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
        for name, module in self.net.named_modules():   # diffusers leaves these random; AnimateDiff zeroes them,
            if "motion_modules" in name and name.endswith("proj_out"):   # so a new model is the image model
                torch.nn.init.zeros_(module.weight)                       # on every frame
                torch.nn.init.zeros_(module.bias)

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


def per_frame(fn, x: torch.Tensor, *args, **kw) -> torch.Tensor:
    """``fn`` on the frames of (B, T, ...) clips as one batch of B T images, reshaped back to clips."""
    return fn(x.flatten(0, 1), *args, **kw).unflatten(0, x.shape[:2])


class VideoLatentPrior:
    """Mixin: clips (B, T, C, H, W) through the per-frame autoencoder (the latents of a clip are its frames'
    latents, (B, T, c, h, w)); the denoiser runs on whole clip latents, so one call is one NFE per clip.
    Wan2.1's VAE also compresses time; the embedded autoencoder is per frame."""
    role = "video "

    def latent_shape(self, clip_shape) -> tuple[int, ...]:
        return (clip_shape[0], *super().latent_shape(clip_shape[1:]))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return per_frame(super().encode, x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return per_frame(super().decode, z)


def video_prior(vae, unet, scaling_factor: float, consistency: bool = False, text_encoder=None):
    """A video U-Net and the per-frame autoencoder behind the latent protocol on clips (``consistency``: with
    the one-step x0 of a consistency model); its starting prompt is ``GENERIC_VIDEO_PROMPT``."""
    from ipbench.datasets.video import GENERIC_VIDEO_PROMPT

    from .latent import ConsistencyPrior, LatentDiffusionPrior
    from .text import TextEncoder
    base = ConsistencyPrior if consistency else LatentDiffusionPrior
    prior = type(f"Video{base.__name__}", (VideoLatentPrior, base), {})(vae, unet, scaling_factor,
                                                                         text_encoder or TextEncoder())
    prior.generic_prompt = GENERIC_VIDEO_PROMPT
    return prior


def load_video_dm(ck: dict, consistency: bool = False):
    """The video DM of a resolved checkpoint (``consistency``: its consistency distillation, the video consistency
    model), with the autoencoder it needs; every file sha256-checked."""
    from ipbench.store.files import load_weights

    from .autoencoder import load_autoencoder
    vae, scaling = load_autoencoder(ck["needs"]["autoencoder"])
    return video_prior(vae, load_weights(build_video_unet(), ck["path"], ck["sha256"]), scaling, consistency)


class VideoImagePair:
    """LVTINO's prior: a video consistency model (VCM) and an image consistency model (ICM) applied per frame,
    sharing one call log (calls named 'video ...' and 'image ...'). ``nfe`` counts denoiser calls per clip:
    an ICM call on all frames of a clip at once is one NFE, as the paper counts (5 VCM + 4 ICM = 9)."""

    def __init__(self, video, image):
        from .calls import CallLog
        self.video, self.image = video, image
        self.calls = CallLog()
        video.calls = image.calls = self.calls
        image.role = "image "

    @property
    def nfe(self) -> int:
        return self.video.nfe + self.image.nfe

    @property
    def ae_calls(self) -> int:
        return self.video.ae_calls + self.image.ae_calls

    def to(self, device) -> "VideoImagePair":
        self.video.to(device)
        self.image.to(device)
        return self

    def frames_x0(self, z_t: torch.Tensor, t: int, c: torch.Tensor) -> torch.Tensor:
        """The ICM's one step on every frame of (B, T, c, h, w) latents; ``c``: one condition per clip."""
        return per_frame(self.image.x0, z_t, t, c.repeat_interleave(z_t.shape[1], 0), items=z_t.shape[0])
