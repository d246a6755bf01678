"""Feature spaces for FID / KID / LPIPS: the digit network (``embedded``) or Inception + VGG (``paper``).

``feature_space({'name': 'digit_net', 'path': ..., 'sha256': ...})`` loads the shipped digit
network (sha256-checked); ``{'name': 'inception'}`` uses clean-fid's Inception-v3 with its
"clean" resizing and the ``lpips`` package's VGG -- both fetch their weights on first use, so they
belong to the ``paper`` profile.
"""
from __future__ import annotations

import numpy as np
import torch

from .lpips import LPIPS


class FeatureSpace:
    """``classify`` (where the network has a class head: the digit network) gives each image's class."""

    def __init__(self, name: str, extractor, lpips: LPIPS, description: str, classify=None):
        self.name, self._extract, self.lpips, self.description = name, extractor, lpips, description
        self._classify = classify

    @torch.no_grad()
    def classify(self, x: torch.Tensor, batch_size: int = 250) -> torch.Tensor | None:
        if self._classify is None:
            return None
        return torch.cat([self._classify(b) for b in x.split(batch_size)]).cpu()

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 250) -> np.ndarray:
        return torch.cat([self._extract(b) for b in x.split(batch_size)]).double().cpu().numpy()


def _digit_net(spec: dict, device: str) -> FeatureSpace:
    from ipbench.metrics.digit_net import DigitNet
    from ipbench.store.files import load_weights
    net = load_weights(DigitNet(), spec["path"], spec.get("sha256")).to(device)
    scale = float(spec.get("feature_rms", 1.0))  # unit-RMS features: KID's cubic kernel expects O(1) inputs
    return FeatureSpace("digit_net", lambda b: net.features(b.to(device)) / scale,
                        LPIPS(backbone=lambda b: net.conv_features(b.to(device))),
                        f"digit-network features ({net.feature_dim}-d penultimate layer; LPIPS on its 3 conv blocks)",
                        classify=lambda b: net(b.to(device)).argmax(1))


def _inception(spec: dict, device: str) -> FeatureSpace:
    """clean-fid's "clean" Inception (its TorchScript file) and the lpips package's VGG, both from the folders
    the fetch stage filled (``spec['inception_dir']``, ``spec['vgg_file']``): nothing is downloaded here."""
    from cleanfid.inception_torchscript import InceptionV3W
    from cleanfid.resize import make_resizer
    if "inception_dir" not in spec:
        raise ValueError("the inception feature space needs its fetched weights (features/checkpoint)")
    model = InceptionV3W(str(spec["inception_dir"]), download=False, resize_inside=False).to(device).eval()
    resize = make_resizer("PIL", False, "bicubic", (299, 299))

    def extract(b):
        imgs = (b.clamp(0, 1) * 255).round().to(torch.uint8)
        if imgs.shape[1] == 1:
            imgs = imgs.expand(-1, 3, -1, -1)
        arr = np.stack([resize(im.permute(1, 2, 0).cpu().numpy()) for im in imgs])
        return model(torch.from_numpy(arr).permute(0, 3, 1, 2).to(device))

    lpips = LPIPS(net=spec.get("lpips_net", "vgg"), backbone_weights=spec.get("vgg_file"))
    return FeatureSpace("inception", extract, lpips,
                        "Inception-v3 pool features (clean-fid); LPIPS-" + spec.get("lpips_net", "vgg"))


FEATURE_SPACES = {"digit_net": _digit_net, "inception": _inception}


def feature_space(spec: dict, device: str = "cpu") -> FeatureSpace:
    name = spec.get("name")
    if name not in FEATURE_SPACES:
        raise ValueError(f"unknown feature space {name!r}; valid: {', '.join(FEATURE_SPACES)}")
    return FEATURE_SPACES[name](spec, device)
