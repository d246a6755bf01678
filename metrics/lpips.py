"""LPIPS through the ``lpips`` package, with a pluggable backbone.

``LPIPS(net='vgg')`` is the package's calibrated metric (the ``paper`` profile; its backbone
weights come from torchvision's hub). ``LPIPS(backbone=f)`` uses any callable returning a list of
feature maps -- the digit network's convolutional blocks in ``embedded`` -- with the package's
channel normalisation and spatial averaging and uniform layer weights (the LPIPS paper's
"baseline" variant: there are no human judgements of digits to calibrate linear layers on).
"""
from __future__ import annotations

from typing import Callable

import lpips as lpips_pkg
import numpy as np
import torch


class LPIPS:
    def __init__(self, backbone: Callable[[torch.Tensor], list[torch.Tensor]] | None = None, net: str = "vgg",
                 backbone_weights: str | None = None):
        """``backbone_weights``: torchvision's VGG-16 file (fetched and verified by the caller), loaded into the
        package's backbone instead of letting torchvision download it."""
        self.backbone = backbone
        self.model = None
        if backbone is None:
            self.model = lpips_pkg.LPIPS(net=net, verbose=False, pnet_rand=backbone_weights is not None).eval()
            if backbone_weights is not None:
                load_torchvision_features(self.model.net, torch.load(backbone_weights, map_location="cpu",
                                                                     weights_only=True))

    @torch.no_grad()
    def __call__(self, x_hat: torch.Tensor, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Per-item distance between [0, 1] images (B, C, H, W); video items are averaged over frames."""
        if x_hat.shape != x.shape:
            raise ValueError(f"shape mismatch: {tuple(x_hat.shape)} vs {tuple(x.shape)}")
        if x.ndim == 5:
            B, T = x.shape[:2]
            return self(x_hat.flatten(0, 1), x.flatten(0, 1), batch_size).reshape(B, T).mean(1)
        out = [self.distance(a.clamp(0, 1).float(), b.clamp(0, 1).float())
               for a, b in zip(x_hat.split(batch_size), x.split(batch_size))]
        return torch.cat(out).double().cpu().numpy()

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Differentiable per-item distance (a training loss: UD2M's perceptual term)."""
        if self.model is not None:
            if a.shape[1] == 1:
                a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
            return self.model(a, b, normalize=True).flatten()
        total = 0.0
        for fa, fb in zip(self.backbone(a), self.backbone(b)):
            diff = (lpips_pkg.normalize_tensor(fa) - lpips_pkg.normalize_tensor(fb)) ** 2
            total = total + lpips_pkg.spatial_average(diff.sum(1, keepdim=True), keepdim=False).flatten()
        return total


def load_torchvision_features(net: torch.nn.Module, state: dict) -> None:
    """torchvision's ``features.<i>.*`` tensors into the lpips package's backbone, whose slices keep the layer
    indices as module names (``slice<k>.<i>.*``); every backbone tensor must be found."""
    own = net.state_dict()
    mapped = {name: state[f"features.{name.split('.', 1)[1]}"] for name in own}
    net.load_state_dict(mapped, strict=True)
