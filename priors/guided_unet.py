"""guided-diffusion's U-Net (Dhariwal & Nichol 2021, ADM), configurable, with the parameter names of the official
``UNetModel``: ADM ImageNet-256, the I2SB / CDDB bridges (the same U-Net without the learned variance) and UD2M's
LoRA targets (``qkv``, ``proj_out``) load into it, and tiny random-weight replicas of each build from the same
class for the tests.

    h = conv(x); skips = [h]; for each level: ResBlocks (+ attention at the listed resolutions), down-sampling
    ResBlock; middle: ResBlock, attention, ResBlock; up path: ResBlocks on [h, skip], attention, up-sampling
    ResBlock; out = conv(SiLU(GroupNorm(h))).
ResBlocks take the timestep embedding by scale and shift of their second GroupNorm (``use_scale_shift_norm``);
attention is the legacy QKV order (heads split before q / k / v), GroupNorm computes in float32, and the torso
runs in float16 with ``use_fp16`` (input and output float32), as the official code.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: ADM ImageNet-256 unconditional (``256x256_diffusion_uncond.pt``): the flags of its model card
ADM_256_UNCOND = dict(image_size=256, in_channels=3, model_channels=256, out_channels=6, num_res_blocks=2,
                      attention_resolutions=(32, 16, 8), channel_mult=(1, 1, 2, 2, 4, 4), num_head_channels=64)
#: I2SB's ``Image256Net``: the ADM-256 architecture with a fixed variance (3 output channels)
I2SB_256 = {**ADM_256_UNCOND, "out_channels": 3}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[cos(t f), sin(t f)] with f = max_period^(-i / half), i < half = dim / 2 (t may be fractional)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], -1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


class GroupNorm32(nn.GroupNorm):
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def norm(channels: int) -> GroupNorm32:
    return GroupNorm32(32, channels)


class ResBlock(nn.Module):
    def __init__(self, channels: int, emb_channels: int, out_channels: int, up: bool = False, down: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        self.in_layers = nn.Sequential(norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.resample = "up" if up else "down" if down else None
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.out_layers = nn.Sequential(norm(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def _resample(self, x):
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return F.avg_pool2d(x, 2) if self.resample == "down" else x

    def forward(self, x, emb):
        h = self._resample(self.in_layers[:-1](x))
        h = self.in_layers[-1](h)
        x = self._resample(x)
        scale, shift = self.emb_layers(emb).type(h.dtype)[..., None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        return self.skip_connection(x) + self.out_layers[1:](h)


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, num_head_channels: int):
        super().__init__()
        self.heads = channels // num_head_channels
        self.norm = norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x, emb=None):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        q, k, v = qkv.reshape(b * self.heads, 3 * c // self.heads, -1).chunk(3, dim=1)   # heads first (legacy)
        scale = (c // self.heads) ** -0.25
        w = torch.einsum("bct,bcs->bts", q * scale, k * scale).float().softmax(-1).type(q.dtype)
        h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class Block(nn.ModuleList):
    """guided-diffusion's ``TimestepEmbedSequential``: layers that take (h, emb)."""

    def forward(self, h, emb):
        for layer in self:
            h = layer(h, emb) if isinstance(layer, (ResBlock, AttentionBlock)) else layer(h)
        return h


class GuidedUNet(nn.Module):
    def __init__(self, image_size: int = 256, in_channels: int = 3, model_channels: int = 256, out_channels: int = 6,
                 num_res_blocks: int = 2, attention_resolutions=(32, 16, 8), channel_mult=(1, 1, 2, 2, 4, 4),
                 num_head_channels: int = 64, use_fp16: bool = False, dropout: float = 0.0):
        """``attention_resolutions``: as the official flags, image_size / resolution gives the down-sampling
        factors with attention (``32,16,8`` at 256: attention at 32 x 32, 16 x 16 and 8 x 8)."""
        super().__init__()
        self.config = dict(image_size=image_size, in_channels=in_channels, model_channels=model_channels,
                           out_channels=out_channels, num_res_blocks=num_res_blocks,
                           attention_resolutions=tuple(attention_resolutions), channel_mult=tuple(channel_mult),
                           num_head_channels=num_head_channels, use_fp16=use_fp16)
        attn_ds = {image_size // r for r in attention_resolutions}
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = model_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList([Block([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        skips, ds = [ch], 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, emb, model_channels * mult, dropout=dropout)]
                ch = model_channels * mult
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, num_head_channels))
                self.input_blocks.append(Block(layers))
                skips.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Block([ResBlock(ch, emb, ch, down=True, dropout=dropout)]))
                skips.append(ch)
                ds *= 2
        self.middle_block = Block([ResBlock(ch, emb, ch, dropout=dropout), AttentionBlock(ch, num_head_channels),
                                   ResBlock(ch, emb, ch, dropout=dropout)])
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), emb, model_channels * mult, dropout=dropout)]
                ch = model_channels * mult
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, num_head_channels))
                if level and i == num_res_blocks:
                    layers.append(ResBlock(ch, emb, ch, up=True, dropout=dropout))
                    ds //= 2
                self.output_blocks.append(Block(layers))
        self.out = nn.Sequential(norm(ch), nn.SiLU(), nn.Conv2d(model_channels * channel_mult[0], out_channels, 3,
                                                                padding=1))
        if use_fp16:                  # the official ``convert_to_fp16``: the torso's convolutions only
            for blocks in (self.input_blocks, self.middle_block, self.output_blocks):
                for layer in blocks.modules():
                    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
                        layer.half()

    @property
    def torso_dtype(self) -> torch.dtype:
        """float16 after ``use_fp16`` (the torso's convolutions), float32 again after ``.float()``."""
        return self.input_blocks[0][0].weight.dtype

    @property
    def dtype(self) -> torch.dtype:
        return self.time_embed[0].weight.dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor, type_t: str = "timestep") -> torch.Tensor:
        """Output channels for x at timesteps t (``type_t`` as deepinv's ``DiffUNet``: timesteps only here)."""
        if type_t != "timestep":
            raise ValueError(f"GuidedUNet takes timesteps (type_t='timestep'), got {type_t!r}")
        emb = self.time_embed(timestep_embedding(torch.as_tensor(t, device=x.device).expand(x.shape[0]),
                                                 self.time_embed[0].in_features).to(self.dtype))
        h, skips = x.type(self.torso_dtype), []
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], 1), emb)
        return self.out(h.type(x.dtype))
