"""VIDUE (Shang et al., CVPR 2023, "Joint Video Multi-Frame Interpolation and Deblurring under Unknown Exposure
Time"): the frame-interpolation network behind LVTINO's Problem C warm start in the official code.

From 4 consecutive blurry frames it predicts the 8 sharp frames of the second one's period:

    vec  = E(frames)                        (exposure-aware embedding, 4 e; E = TPP: a motion net, an encoder)
    o    = M(frame, vec) per frame          (4 offset channels; motion map |o[2:] - o[:2]|)
    flow = R(o, vec)                        (a Super-SloMo U-Net: 8 flows)
    out_j = U(frames - mean, flow, vec, motion map)_j + mean,   j = 0..7

Written from the paper and the released architecture (``ResNet`` of ``model/vidue_worsu.py``, 4 inputs, 7 + 1
outputs, blocks [3, 6, 6, 6], 64 features): the module names follow the released checkpoint's keys, so that its
state dict loads as it is. Two quirks of the released code are kept, because its weights were trained so:
the extractor's batch norms always normalise with the statistics of the sample itself (the code never calls
``eval()``, and LVTINO runs one window per batch), and the flow warp normalises the grid for
``align_corners=True`` but samples with ``align_corners=False``.

``interpolate_clip`` is LVTINO's use of it (``minimal_inference/LVTINO_VIDUE.py``): every measured frame is
written as an 8-bit image, each window of 4 frames (reflected at both ends) gives the 8 frames of the period of
its second frame, the outputs pass through 8-bit JPEG files (quality 75), the first T - 1 frames are kept and
the last repeated; the result is then upsampled bilinearly to the clip's size.
"""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def _lrelu(slope: float = 0.01) -> nn.Module:
    return nn.LeakyReLU(slope)


class SampleNorm(nn.BatchNorm2d):
    """A batch norm's parameters, normalising each sample with its own statistics (batch norm in training mode on
    a batch of one, as the released code runs it); the running statistics are loaded and never used."""

    def forward(self, x):
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class SE(nn.Module):
    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // reduction), nn.ReLU(), nn.Linear(c // reduction, c), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class ResBlock(nn.Module):
    """x + [SE](conv2(lrelu_0.1(conv1 x))), batch norms after each conv when ``bn``."""

    def __init__(self, c: int, se: bool = True, bn: bool = False):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)
        if se:
            self.se = SE(c)
        if bn:
            self.bn1, self.bn2 = SampleNorm(c), SampleNorm(c)

    def forward(self, x):
        bn1, bn2 = getattr(self, "bn1", nn.Identity()), getattr(self, "bn2", nn.Identity())
        out = bn2(self.conv2(F.leaky_relu(bn1(self.conv1(x)), 0.1)))
        return x + (self.se(out) if hasattr(self, "se") else out)


def _stage(conv: nn.Module, c: int, n: int, **block) -> nn.Sequential:
    """[conv + leaky ReLU] then n residual blocks (a conv with a batch norm when ``bn``)."""
    head = [conv, SampleNorm(c), _lrelu()] if block.get("bn") else [conv, _lrelu()]
    return nn.Sequential(nn.Sequential(*head), *[ResBlock(c, **block) for _ in range(n)])


class ChannelAttention(nn.Module):
    """x * sigmoid(W2 lrelu(W1 vec)): a channel gate from the embedding (1 x 1 convs, no bias)."""

    def __init__(self, vec: int, c: int):
        super().__init__()
        r = 4 if vec == 256 else 1                          # the released rule
        self.conv_du = nn.Sequential(nn.Conv2d(vec, vec // r, 1, bias=False), nn.LeakyReLU(0.1),
                                     nn.Conv2d(vec // r, c, 1, bias=False), nn.Sigmoid())

    def forward(self, x, vec):
        return x * self.conv_du(vec[:, :, None, None])


class ChanNorm(nn.Module):
    def __init__(self, c: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g, self.b = nn.Parameter(torch.ones(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) / (var + self.eps).sqrt() * self.g + self.b


class StyleLayer(nn.Module):
    """x + conv_{W (s + 1), demodulated}(ChanNorm x), s = MLP(vec): a StyleGAN2 modulated 3 x 3 conv."""

    def __init__(self, vec: int, c: int):
        super().__init__()
        self.norm = ChanNorm(c)
        self.conv_du = nn.Sequential(nn.Linear(vec, vec // 4, bias=False), nn.LeakyReLU(0.1),
                                     nn.Linear(vec // 4, c, bias=False))
        self.conv = nn.Module()
        self.conv.weight = nn.Parameter(torch.empty(c, c, 3, 3))
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="leaky_relu")

    def forward(self, x, vec):
        B, C, H, W = x.shape
        w = self.conv.weight[None] * (self.conv_du(vec)[:, None, :, None, None] + 1)
        w = w * torch.rsqrt(w.pow(2).sum((2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(self.norm(x).reshape(1, B * C, H, W), w.reshape(B * C, C, 3, 3), padding=1, groups=B)
        return out.reshape(B, C, H, W) + x


def warp(x, flow):
    """x sampled at (pixel + flow), border-padded, zeroed where the sample leaves the frame (the released warp)."""
    B, _, H, W = x.shape
    ys, xs = torch.meshgrid(torch.arange(H, device=x.device, dtype=x.dtype),
                            torch.arange(W, device=x.device, dtype=x.dtype), indexing="ij")
    gx = 2 * (xs + flow[:, 0]) / max(W - 1, 1) - 1
    gy = 2 * (ys + flow[:, 1]) / max(H - 1, 1) - 1
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, mode="bilinear", align_corners=False)
    return out * (inside >= 0.999)


class Synthesis(nn.Module):
    """One scale of the frame synthesis: each of the n outputs warps the features along its refined flow, blended
    by a motion mask, then three residual stages and a conv to RGB (``SynBlock``)."""

    def __init__(self, nf: int, vec: int, n: int = 8):
        super().__init__()
        c = nf // 4
        self.conv1, self.conv2 = nn.Conv2d(nf, c, 1), nn.Conv2d(1 + c, n, 3, 1, 1)
        self.se1 = StyleLayer(vec, 2 * n)
        self.ref1 = nn.Sequential(*[nn.Conv2d(2, 2, 3, 1, 1) for _ in range(n)])
        self.syn1 = nn.Sequential(*[nn.Conv2d(c, c, 3, 1, 1) for _ in range(n)])
        self.syn2 = nn.Sequential(*[ResBlock(c) for _ in range(n)])
        self.syn3 = nn.Sequential(*[ResBlock(c) for _ in range(n)])
        self.out = nn.Sequential(*[nn.Conv2d(c, 3, 3, 1, 1) for _ in range(n)])
        self.n = n

    def forward(self, fea, flows, mmap, vec):
        B, (H, W) = fea.shape[0], fea.shape[-2:]
        f = self.conv1(fea)
        flows = F.interpolate(flows, size=(H, W), mode="bilinear", align_corners=False)   # magnitudes as they are
        refined = self.se1(flows, vec).view(B, self.n, 2, H, W)
        flows = flows.view(B, self.n, 2, H, W)
        mmap = F.interpolate(mmap, size=(H, W), mode="bilinear", align_corners=False)
        m = torch.sigmoid(self.conv2(torch.cat([mmap, f], 1)) + mmap)
        outs = []
        for j in range(self.n):
            mj = m[:, j:j + 1]
            flow = refined[:, j] * mj + flows[:, j] * (1 - mj)
            flow = self.ref1(flow) + flow                  # all n refining convs, in sequence, for every output
            h = f * (1 - mj) + warp(f, flow) * mj
            h = self.syn1[j](h) + h
            h = self.syn2[j](h) + h
            h = self.syn3[j](h) + h
            outs.append(self.out[j](h))
        return outs


class FrameUNet(nn.Module):
    """The synthesis U-Net (``UNet`` of the released code): residual encoder / decoder with style layers, a
    synthesis at 1/4, 1/2 and full scale, coarse outputs upsampled and added."""

    def __init__(self, f: int, vec: int, n_in: int = 4, n_out: int = 8, blocks=(3, 6, 6, 6)):
        super().__init__()
        up = lambda a, b: nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1)          # noqa: E731
        self.inBlock = nn.Sequential(nn.Sequential(nn.Conv2d(3 * n_in, f, 7, 1, 3), _lrelu(0.1)),
                                     *[ResBlock(f, se=False) for _ in range(blocks[0])])
        self.encoder_first = _stage(nn.Conv2d(f, 2 * f, 3, 2, 1), 2 * f, blocks[1], se=False)
        self.encoder_second = _stage(nn.Conv2d(2 * f, 4 * f, 3, 2, 1), 4 * f, blocks[2], se=False)
        self.encoder_third = _stage(nn.Conv2d(4 * f, 4 * f, 3, 2, 1), 4 * f, blocks[3], se=False)
        self.decoder_third = _stage(up(4 * f, 4 * f), 4 * f, blocks[3], se=False)
        self.decoder_second = _stage(up(4 * f, 2 * f), 2 * f, blocks[2], se=False)
        self.decoder_first = _stage(up(2 * f, f), f, blocks[1], se=False)
        self.outBlock = nn.Sequential(*[ResBlock(f) for _ in range(blocks[0])], nn.Conv2d(f, 3 * n_out, 3, 1, 1))
        self.predict_ll, self.predict_l, self.predict = (Synthesis(c, vec, n_out) for c in (4 * f, 2 * f, f))
        self.se3, self.se2, self.se1 = (StyleLayer(vec, c) for c in (4 * f, 2 * f, f))
        self.conv1 = nn.Conv2d(n_in, 1, 1)

    def forward(self, x, flows, vec, motion, mean):
        mmap = self.conv1(motion) + motion.mean(1, keepdim=True)
        e0 = self.inBlock(x)
        e1 = self.encoder_first(e0)
        e2 = self.encoder_second(e1)
        d3 = self.decoder_third(self.encoder_third(e2))
        d3 = self.se3(d3, vec) + d3
        out = self.predict_ll(d3, flows, mmap, vec)
        d2 = self.decoder_second(d3 + e2)
        d2 = self.se2(d2, vec) + d2
        out = [_up(o, d2) + p for o, p in zip(out, self.predict_l(d2, flows, mmap, vec))]
        d1 = self.decoder_first(d2 + e1)
        d1 = self.se1(d1, vec) + d1
        out = [_up(o, d1) + p for o, p in zip(out, self.predict(d1, flows, mmap, vec))]
        base = self.outBlock(d1 + e0).split(3, dim=1)
        return [b + o + mean for b, o in zip(base, out)]


def _up(x, like):
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class PadResBlock(nn.Module):
    """x + conv5(pad(relu(conv5(pad x)))), replicate padding (``ResnetBlock_woNorm``)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReplicationPad2d(2), nn.Conv2d(c, c, 5), nn.ReLU(),
                                        nn.ReplicationPad2d(2), nn.Conv2d(c, c, 5))

    def forward(self, x):
        return x + self.conv_block(x)


def _down(a: int, b: int, stride: int) -> nn.Sequential:
    pad = nn.ReflectionPad2d(2) if stride == 1 else nn.ReflectionPad2d((1, 2, 1, 2))
    return nn.Sequential(pad, nn.Conv2d(a, b, 5, stride), nn.ReLU(), nn.Sequential(*[PadResBlock(b) for _ in range(3)]))


class Bottleneck(nn.Module):
    """lrelu_0.2(conv3(lrelu_0.2(conv1 x))); its convs are registered twice, as ``conv1`` / ``conv2`` and inside
    ``model``, as the released checkpoint stores them."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, 2 * c, 1), nn.Conv2d(2 * c, c, 3, 1, 1)
        self.model = nn.Sequential(self.conv1, nn.LeakyReLU(0.2), self.conv2, nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.model(x)


class OffsetNet(nn.Module):
    """Per frame, 4 channels (start and end offsets of the motion trajectory) from a space-to-depth U-Net
    (``OffsetNet_quad``); with ``vec``, channel gates after each bottleneck (``OffsetNet_quad_v2``)."""

    def __init__(self, nf: int = 16, vec: int | None = None):
        super().__init__()
        self.conv_1, self.conv_2, self.conv_3 = _down(12, nf, 1), _down(nf, 2 * nf, 2), _down(2 * nf, 4 * nf, 2)
        self.bottleneck_1, self.bottleneck_2, self.bottleneck_3 = Bottleneck(4 * nf), Bottleneck(4 * nf), \
            Bottleneck(2 * nf)
        self.uconv_1 = nn.ConvTranspose2d(4 * nf, 2 * nf, 4, 2, 1)
        self.uconv_2 = nn.ConvTranspose2d(4 * nf, nf, 4, 2, 1)
        self.uconv_3 = nn.ConvTranspose2d(2 * nf, 2 * nf, 4, 2, 1)
        self.conv_out_0 = nn.Conv2d(2 * nf, 4, 5, 1, 2)
        if vec is not None:
            self.use1, self.use2, self.use3 = (ChannelAttention(vec, c) for c in (4 * nf, 4 * nf, 2 * nf))

    def forward(self, frames, vec=None):
        gate = (lambda i, x: getattr(self, f"use{i}")(x, vec)) if vec is not None else (lambda i, x: x)
        N, C, H, W = frames.shape                                      # space to depth: channel (dy * 2 + dx) C + c
        x = frames.view(N, C, H // 2, 2, W // 2, 2).permute(0, 3, 5, 1, 2, 4).reshape(N, 4 * C, H // 2, W // 2)
        d1 = self.conv_1(x)
        d2 = self.conv_2(d1)
        u = gate(1, self.bottleneck_1(self.conv_3(d2)))
        u = torch.cat([F.leaky_relu(self.uconv_1(u), 0.2), d2], 1)
        u = gate(2, self.bottleneck_2(u))
        u = torch.cat([F.leaky_relu(self.uconv_2(u), 0.2), d1], 1)
        u = gate(3, self.bottleneck_3(u))
        return self.conv_out_0(F.relu(self.uconv_3(u)))


def motion_magnitude(offsets):
    """|offset_end - offset_start| per pixel, (N, 1, H, W)."""
    return (offsets[:, 2:] - offsets[:, :2]).abs().pow(2).sum(1, keepdim=True).sqrt()


class Extractor(nn.Module):
    """The exposure-aware embedding (``Exractor``): a batch-normed residual encoder whose inputs are gated by a
    motion map at every scale, average-pooled, through an MLP to 4 e values."""

    def __init__(self, e: int = 64, n_in: int = 4, blocks=(2, 2, 2, 2)):
        super().__init__()
        self.inBlock = nn.Sequential(nn.Sequential(nn.Conv2d(3 * n_in, e, 7, 1, 3), SampleNorm(e), _lrelu(0.1)),
                                     *[ResBlock(e, se=False, bn=True) for _ in range(blocks[0])])
        self.encoder_first = _stage(nn.Conv2d(e, 2 * e, 3, 2, 1), 2 * e, blocks[1], se=False, bn=True)
        self.encoder_second = _stage(nn.Conv2d(2 * e, 4 * e, 3, 2, 1), 4 * e, blocks[2], se=False, bn=True)
        self.encoder_third = _stage(nn.Conv2d(4 * e, 4 * e, 3, 2, 1), 4 * e, blocks[3], se=False, bn=True)
        self.mlp = nn.Sequential(nn.Linear(4 * e, 16 * e), _lrelu(), nn.Linear(16 * e, 4 * e))
        self.conv1 = nn.Conv2d(n_in, 1, 1)

    def forward(self, x, motion):
        mmap = torch.sigmoid(self.conv1(motion) + motion.mean(1, keepdim=True))
        h = self.inBlock(x * mmap)
        h = self.encoder_first(h * mmap)
        mmap = _up(mmap, h)
        h = self.encoder_second(h * mmap)
        mmap = _up(mmap, h)
        h = self.encoder_third(h * mmap)
        return self.mlp(h.mean((2, 3)))


class TimePrior(nn.Module):
    """``TPP``: the motion of every frame (an offset net, magnitude), then the extractor; the embedding is used
    as it comes out (not L2-normalised), as VIDUE's forward asks for it."""

    def __init__(self, e: int = 64, nf: int = 16, n_in: int = 4):
        super().__init__()
        self.extractor = Extractor(e, n_in)
        self.motion = nn.Module()
        self.motion.offset_net = OffsetNet(nf)

    def forward(self, frames):                                          # (B, n_in, 3, H, W)
        B, n, C, H, W = frames.shape
        motion = motion_magnitude(self.motion.offset_net(frames.reshape(B * n, C, H, W))).view(B, n, H, W)
        return self.extractor(frames.reshape(B, n * C, H, W), motion)


class Down(nn.Module):
    """avg-pool 2, then two k x k convs with leaky ReLU 0.1."""

    def __init__(self, a: int, b: int, k: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(a, b, k, 1, k // 2), nn.Conv2d(b, b, k, 1, k // 2)

    def forward(self, x):
        return F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(F.avg_pool2d(x, 2)), 0.1)), 0.1)


class Up(nn.Module):
    """Bilinear resize to the skip's size, a 3 x 3 conv, then a 3 x 3 conv on [x, skip] (leaky ReLU 0.1)."""

    def __init__(self, a: int, b: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(a, b, 3, 1, 1), nn.Conv2d(2 * b, b, 3, 1, 1)

    def forward(self, x, skip):
        x = F.leaky_relu(self.conv1(_up(x, skip)), 0.1)
        return F.leaky_relu(self.conv2(torch.cat([x, skip], 1)), 0.1)


class SloMoUNet(nn.Module):
    """The flow refiner (``UNet2_V2``): a Super-SloMo U-Net, r .. 16 r channels, channel gates on the way up."""

    def __init__(self, c_in: int, c_out: int, vec: int, r: int = 32):
        super().__init__()
        w = [r, 2 * r, 4 * r, 8 * r, 16 * r, 16 * r]
        self.conv1, self.conv2 = nn.Conv2d(c_in, r, 7, 1, 3), nn.Conv2d(r, r, 7, 1, 3)
        for i in range(5):
            setattr(self, f"down{i + 1}", Down(w[i], w[i + 1], 5 if i == 0 else 3))
            setattr(self, f"up{i + 1}", Up(w[5 - i], w[4 - i]))
            setattr(self, f"use{i + 1}", ChannelAttention(vec, w[4 - i]))
        self.conv3 = nn.Conv2d(r, c_out, 3, 1, 1)

    def forward(self, x, vec):
        skips = [F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.1)), 0.1)]
        for i in range(1, 6):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        x = skips.pop()
        for i in range(1, 6):
            x = getattr(self, f"use{i}")(getattr(self, f"up{i}")(x, skips.pop()), vec)
        return F.leaky_relu(self.conv3(x), 0.1)


class VIDUE(nn.Module):
    """The released ``ResNet(n_inputs=4, n_outputs_e=7, n_outputs_r=1, blocks=[3, 6, 6, 6], feats=64)``; smaller
    ``feats`` / ``extractor_feats`` / ``offset_nf`` / ``refine_nf`` make the random-weight test replica."""

    def __init__(self, feats: int = 64, extractor_feats: int = 64, offset_nf: int = 16, refine_nf: int = 32,
                 n_in: int = 4, n_out: int = 8, blocks=(3, 6, 6, 6)):
        super().__init__()
        vec = 4 * extractor_feats
        self.config = dict(feats=feats, extractor_feats=extractor_feats, offset_nf=offset_nf, refine_nf=refine_nf,
                           n_in=n_in, n_out=n_out, blocks=list(blocks))
        self.UNet = FrameUNet(feats, vec, n_in, n_out, blocks)
        self.extractor = TimePrior(extractor_feats, offset_nf, n_in)
        self.refine = SloMoUNet(4 * n_in, 2 * n_out, vec, refine_nf)
        self.motion = nn.Module()
        self.motion.offset_net = OffsetNet(offset_nf, vec)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 4, 3, H, W) blurry frames in [0, 1] (sides multiples of 8, at least 32) -> (B, 8, 3, H, W)."""
        B, n, C, H, W = frames.shape
        if H % 8 or W % 8 or min(H, W) < 32:
            raise ValueError(f"VIDUE takes frames whose sides are multiples of 8 and at least 32, got {H} x {W}")
        mean = frames.mean((1, 3, 4), keepdim=True)                   # per sample and colour
        centred = (frames - mean).transpose(1, 2).reshape(B, C * n, H, W)   # colour-major, as the released code
        vec = self.extractor(frames)
        offsets = self.motion.offset_net(frames.reshape(B * n, C, H, W), vec.repeat_interleave(n, 0))
        motion = motion_magnitude(offsets).view(B, n, H, W)
        flows = self.refine(offsets.reshape(B, 4 * n, H, W), vec)
        return torch.stack(self.UNet(centred, flows, vec, motion, mean[:, 0]), 1)


def jpeg_roundtrip(frames: torch.Tensor, quality: int = 75) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> the same frames written as 8-bit JPEG files (Pillow, ``quality``) and read back."""
    from PIL import Image
    out = []
    for f in (frames.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy():
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=quality)
        out.append(torch.from_numpy(np.array(Image.open(buf).convert("RGB"))))
    return torch.stack(out).permute(0, 3, 1, 2).float() / 255


def windows(n: int) -> list[list[int]]:
    """The 4-frame windows over n measured frames whose outputs LVTINO keeps: window k = (k - 1, k, k + 1, k + 2),
    indices reflected at both ends (the official inference's ``border``), gives frames 8 k .. 8 k + 7."""
    reflect = lambda i: -i if i < 0 else (2 * (n - 1) - i if i > n - 1 else i)   # noqa: E731
    return [[reflect(k + d) for d in (-1, 0, 1, 2)] for k in range(n - 1)]


@torch.no_grad()
def interpolate_clip(net, y: torch.Tensor, T: int, size: tuple[int, int], jpeg_quality: int | None = 75,
                     record=None) -> torch.Tensor:
    """LVTINO's Problem C warm start: (T', C, h, w) measured frames in [0, 1] (each the average of 8 frames) ->
    (T, C, H, W) in [0, 1]: the frames of ``windows``, the first T - 1 kept and the last repeated, upsampled
    bilinearly to ``size``. Frames whose sides are not multiples of 8 (and at least 32, for the flow U-Net's five
    poolings) are padded by replication and cropped back (the published sizes need neither). Grey clips are
    repeated to RGB and averaged back. ``record(fn, x)``: logs each network call (one window per call)."""
    n, C, h, w = y.shape
    if n < 2:
        raise ValueError(f"VIDUE's warm start needs at least 2 measured frames, got {n}")
    frames = (y.float().clamp(0, 1) * 255).round() / 255              # the 8-bit frames the official code writes
    frames = frames.expand(-1, 3, -1, -1) if C == 1 else frames
    H8, W8 = (max(32, -(-s // 8) * 8) for s in (h, w))
    frames = F.pad(frames, (0, W8 - w, 0, H8 - h), mode="replicate")
    dev = next(net.parameters()).device
    out = []
    for window in windows(n):
        x = frames[window][None].to(dev)
        if record is not None:
            record(net, x)
        out.append(net(x).float().cpu()[0, :, :, :h, :w])
    out = torch.cat(out)
    out = jpeg_roundtrip(out, jpeg_quality) if jpeg_quality else (out.clamp(0, 1) * 255).round() / 255
    kept = out[:T - 1]
    out = torch.cat([kept, kept[-1:].expand(T - len(kept), -1, -1, -1)])
    out = out.mean(1, keepdim=True) if C == 1 else out
    return F.interpolate(out, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
