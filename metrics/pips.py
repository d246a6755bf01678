"""PIPs++ (Zheng et al. 2023, PointOdyssey), the point tracker of FVMD's ``fvmd`` package (Liu et al. 2024).

Every frame is encoded at stride 8 (``fnet``, a residual encoder with instance norms, four scales resized to 1/8
and fused); a point's template is its feature in frame 0. For 16 iterations, with coordinates c (B, S, N, 2) in
feature pixels:

    corr_d = <template_d, F_t> / sqrt(C)  on a 4-level pyramid, sampled in a 7 x 7 window around c_t,
             for templates from frame 0 (d = 1) and from the current track at t - 2 and t - 4 (d = 2, 4);
    c_t <- c_t + Delta([corr_1, corr_2, corr_4, emb(c_{t+1} - c_t)])   (Delta: a 1-D conv ResNet over time),
    with frame 0 locked and the last 3 updates halved ("beautify"); the track is 8 c.

Written from the released architecture (``Pips`` of pips2's ``nets/pips2.py``, which the fvmd package ships
unchanged): the module names follow the released checkpoint's keys. Smaller ``latent`` / ``widths`` /
``base_filters`` make the random-weight test replica.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LEVELS, RADIUS, ITERS, STRIDE = 4, 3, 16, 8


class Residual2d(nn.Module):
    """relu(x' + relu(IN conv(relu(IN conv x)))), x' = IN conv_1x1 x when the block strides (``downsample``)."""

    def __init__(self, a: int, b: int, stride: int = 1):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(a, b, 3, stride, 1), nn.Conv2d(b, b, 3, 1, 1)
        self.downsample = nn.Sequential(nn.Conv2d(a, b, 1, stride), nn.InstanceNorm2d(b)) if stride != 1 else None

    def forward(self, x):
        y = F.relu(F.instance_norm(self.conv1(x)))
        y = F.relu(F.instance_norm(self.conv2(y)))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class Encoder(nn.Module):
    """``BasicEncoder`` (instance norms): a 7 x 7 stride-2 stem, four residual layers (strides 1, 2, 2, 2), each
    output resized to 1/8 (bilinear, align_corners=True), concatenated, a 3 x 3 then a 1 x 1 conv."""

    def __init__(self, latent: int = 128, widths=(64, 96, 128, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3)
        a = widths[0]
        for i, (b, s) in enumerate(zip(widths, (1, 2, 2, 2))):
            setattr(self, f"layer{i + 1}", nn.Sequential(Residual2d(a, b, s), Residual2d(b, b)))
            a = b
        self.conv2 = nn.Conv2d(sum(widths), 2 * latent, 3, 1, 1)
        self.conv3 = nn.Conv2d(2 * latent, latent, 1)

    def forward(self, x):
        H, W = x.shape[-2:]
        h = F.relu(F.instance_norm(self.conv1(x)))
        scales = []
        for i in range(4):
            h = getattr(self, f"layer{i + 1}")(h)
            scales.append(F.interpolate(h, (H // STRIDE, W // STRIDE), mode="bilinear", align_corners=True))
        return self.conv3(F.relu(F.instance_norm(self.conv2(torch.cat(scales, 1)))))


class SameConv1d(nn.Module):
    def __init__(self, a: int, b: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(a, b, k)

    def forward(self, x):
        k = self.conv.kernel_size[0]
        return self.conv(F.pad(x, ((k - 1) // 2, k - 1 - (k - 1) // 2)))


class Residual1d(nn.Module):
    """Pre-activation: x + conv(relu(IN conv(relu(IN x)))) (no first IN / relu in block 0); a wider output pads
    the identity with zero channels, half before, half after."""

    def __init__(self, a: int, b: int, first: bool = False):
        super().__init__()
        self.conv1, self.conv2, self.first, self.a, self.b = SameConv1d(a, b), SameConv1d(b, b), first, a, b

    def forward(self, x):
        h = x if self.first else F.relu(F.instance_norm(x))
        h = self.conv2(F.relu(F.instance_norm(self.conv1(h))))
        pad = self.b - self.a
        return h + (F.pad(x, (0, 0, pad // 2, pad - pad // 2)) if pad else x)


def sincos(xy: torch.Tensor, C: int) -> torch.Tensor:
    """[sin(x w), cos(x w), sin(y w), cos(y w), x, y], w_k = 10000^(-k / (C/4 - 1)), k < C / 4."""
    w = 1.0 / 10000 ** (torch.arange(C // 4, device=xy.device, dtype=xy.dtype) / (C // 4 - 1))
    x, y = xy[..., :1] * w, xy[..., 1:] * w
    return torch.cat([x.sin(), x.cos(), y.sin(), y.cos(), xy], -1)


class DeltaBlock(nn.Module):
    """The update: [correlations (3 x 4 x 49), sincos(flow) (C + 2)] -> 8 residual 1-D conv blocks over time
    (widths f, f, 2f, 2f, 4f, 4f, 8f, 8f) -> relu -> a linear layer to (dx, dy) per frame."""

    def __init__(self, emb: int = 128, base_filters: int = 128):
        super().__init__()
        f, self.emb = base_filters, emb
        self.first_block_conv = SameConv1d(3 * LEVELS * (2 * RADIUS + 1) ** 2 + emb + 2, f)
        widths = [f, f, f, 2 * f, 2 * f, 4 * f, 4 * f, 8 * f, 8 * f]
        self.basicblock_list = nn.ModuleList(Residual1d(widths[i], widths[i + 1], first=i == 0) for i in range(8))
        self.dense = nn.Linear(8 * f, 2)

    def forward(self, corr, flow):
        x = torch.cat([corr, sincos(flow, self.emb)], -1).transpose(1, 2)
        x = F.relu(self.first_block_conv(x))
        for block in self.basicblock_list:
            x = block(x)
        return self.dense(F.relu(x).transpose(1, 2))


def sample_border(fmap: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) at pixel points (B, N, 2) -> (B, N, C): bilinear, pixel centres at integers, clamped at the
    border (pips2's ``bilinear_sample2d``)."""
    H, W = fmap.shape[-2:]
    grid = torch.stack([2 * xy[..., 0] / (W - 1) - 1, 2 * xy[..., 1] / (H - 1) - 1], -1)[:, :, None]
    return F.grid_sample(fmap, grid, padding_mode="border", align_corners=True)[..., 0].transpose(1, 2)


class Correlation:
    """Template-to-frame correlations on an average-pooled pyramid, sampled in (2r + 1)^2 windows (zeros outside;
    window entry a (2r + 1) + b is offset (a - r, b - r) in (x, y), as the released sampler orders it)."""

    def __init__(self, fmaps: torch.Tensor, pyramid: list[torch.Tensor] | None = None):
        """``pyramid``: another correlation's, over the same ``fmaps`` (built once)."""
        B, S, C, H, W = fmaps.shape
        self.pyramid = pyramid or [fmaps]
        while len(self.pyramid) < LEVELS:
            f = F.avg_pool2d(self.pyramid[-1].reshape(B * S, C, *self.pyramid[-1].shape[-2:]), 2, 2)
            self.pyramid.append(f.reshape(B, S, C, *f.shape[-2:]))

    def corr(self, templates: torch.Tensor) -> "Correlation":
        B, S, N, C = templates.shape
        self.corrs = [(templates @ f.flatten(3)).view(B, S, N, *f.shape[-2:]) / C ** 0.5 for f in self.pyramid]
        return self

    def sample(self, coords: torch.Tensor) -> torch.Tensor:
        B, S, N, _ = coords.shape
        r = torch.arange(-RADIUS, RADIUS + 1, device=coords.device, dtype=coords.dtype)
        offset = torch.stack(torch.meshgrid(r, r, indexing="ij"), -1)          # [a, b] = (a - r, b - r) as (x, y)
        out = []
        for i, c in enumerate(self.corrs):
            H, W = c.shape[-2:]
            xy = coords.reshape(B * S * N, 1, 1, 2) / 2 ** i + offset
            grid = torch.stack([2 * xy[..., 0] / (W - 1) - 1, 2 * xy[..., 1] / (H - 1) - 1], -1)
            out.append(F.grid_sample(c.reshape(B * S * N, 1, H, W), grid, align_corners=True).view(B, S, N, -1))
        return torch.cat(out, -1)


class Pips(nn.Module):
    """``Pips(stride=8)`` with the fvmd package's call: ``forward(frames, points)``, frames (B, S, 3, H, W) in
    [0, 255], points (B, N, 2) (x, y) in frame 0 -> tracks (B, S, N, 2) in pixels."""

    def __init__(self, latent: int = 128, widths=(64, 96, 128, 128), base_filters: int = 128):
        super().__init__()
        self.config = dict(latent=latent, widths=list(widths), base_filters=base_filters)
        self.latent = latent
        self.fnet = Encoder(latent, widths)
        self.delta_block = DeltaBlock(128, base_filters)          # its flow embedding is 128 wide whatever the latent
        self.norm = nn.GroupNorm(1, latent)                 # in the released model and its checkpoint, never used

    def forward(self, frames: torch.Tensor, points: torch.Tensor, iters: int = ITERS) -> torch.Tensor:
        B, S, _, H, W = frames.shape
        N = points.shape[1]
        fmaps = self.fnet((2 * frames / 255 - 1).flatten(0, 1)).view(B, S, self.latent, H // STRIDE, W // STRIDE)
        start = points / STRIDE
        coords = start[:, None].repeat(1, S, 1, 1)
        template = sample_border(fmaps[:, 0], start)[:, None].expand(B, S, N, self.latent)
        corr1 = Correlation(fmaps).corr(template)
        corr2, corr4 = Correlation(fmaps, corr1.pyramid), Correlation(fmaps, corr1.pyramid)
        corr2.corrs = corr4.corrs = corr1.corrs          # the three templates are frame 0's until the first update
        for itr in range(iters):
            if itr >= 1:                                    # templates from the current track, 2 and 4 frames back
                for corr, lag in ((corr2, 2), (corr4, 4)):
                    back = (torch.arange(S) - lag).clamp(min=0)
                    feats = sample_border(fmaps[:, back].flatten(0, 1), coords[:, back].flatten(0, 1))
                    corr.corr(feats.view(B, S, N, self.latent))
            c = torch.cat([k.sample(coords) for k in (corr1, corr2, corr4)], -1)      # (B, S, N, 588)
            c = c.permute(0, 2, 1, 3).reshape(B * N, S, -1)
            flow = (coords[:, 1:] - coords[:, :-1]).permute(0, 2, 1, 3).reshape(B * N, S - 1, 2)
            delta = self.delta_block(c, torch.cat([flow, flow[:, -1:]], 1))
            if itr > 3 * iters // 4:
                delta = 0.5 * delta
            coords = coords + delta.view(B, N, S, 2).permute(0, 2, 1, 3)
            coords[:, 0] = start
        return coords * STRIDE


def load_pips(path, architecture: dict | None = None) -> Pips:
    """The fvmd package's ``pips2_weights.pth`` (its ``model_state_dict``, loaded as tensors only) into ``Pips``
    (the released size, or ``architecture``: tiny replicas), strictly."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("model_state_dict", ckpt)
    net = Pips(**(architecture or {}))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} is not a PIPs++ state dict of this architecture: {str(err)[:300]}") from None
    return net.eval().requires_grad_(False)
