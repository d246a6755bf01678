"""The suite's linear operators as deepinv physics, for networks that condition on one: RAM (Terris,
Hurault, Song, Tachella, arXiv 2503.08915), UD2M+RAM's warm start in the ``paper`` profile.

``ud2m_stack`` builds UD2M's stacked physics (a ``WhitenedStack``) [A; sqrt(abar_t) I] with measurements (y, x_t'): every
block i, of noise std sigma_i, is scaled by w_i = m / sigma_i with m = min_i sigma_i, so that the stack
has one noise std m, as the official UD2M's ``StackedJointPhysics`` (charles-kmc/UD2M, hqs_modules.py).
"""
from __future__ import annotations

from typing import Callable, Sequence

import deepinv as dinv
import torch
from deepinv.utils import TensorList

Map = Callable[[torch.Tensor], torch.Tensor]


def _as_tensor(v, ref: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=ref.dtype, device=ref.device)


def _per_image(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """A scalar, or one value per image (B,), shaped to broadcast over (B, ...) tensors of ``ndim`` dims."""
    return v if v.ndim == 0 else v.view(-1, *([1] * (ndim - 1)))


def linear_physics(A: Map, A_adjoint: Map, sigma, weight=1.0) -> dinv.physics.LinearPhysics:
    """y = w A x + n, n ~ N(0, sigma^2 I) as a deepinv ``LinearPhysics`` (``weight`` and ``sigma``: scalars,
    or one value per image)."""
    def scaled(f: Map) -> Map:
        return lambda u, **_: f(u) * _per_image(_as_tensor(weight, u), u.ndim)
    return dinv.physics.LinearPhysics(A=scaled(A), A_adjoint=scaled(A_adjoint),
                                      noise_model=dinv.physics.GaussianNoise(sigma))


class WhitenedStack(dinv.physics.StackedLinearPhysics):
    """[w_1 A_1; ...; w_n A_n], w_i = m / sigma_i, m = min_i sigma_i, with noise std m: ``blocks`` are
    (A_i, A_i^T, sigma_i); ``measurements(ys)`` returns the TensorList (w_i y_i)."""

    def __init__(self, blocks: Sequence[tuple[Map, Map, torch.Tensor]]):
        sigmas = torch.stack([torch.as_tensor(s) for _, _, s in blocks])
        self.m = sigmas.min(0).values
        self.weights = [self.m / s for s in sigmas]
        super().__init__([linear_physics(A, At, self.m, w) for (A, At, _), w in zip(blocks, self.weights)])
        self.noise_model = dinv.physics.GaussianNoise(self.m)

    def measurements(self, ys: Sequence[torch.Tensor]) -> TensorList:
        return TensorList([y * _per_image(_as_tensor(w, y), y.ndim) for y, w in zip(ys, self.weights)])


def ud2m_stack(op, x_t: torch.Tensor, abar_t: torch.Tensor, sigma_floor: float = 0.0) -> tuple[WhitenedStack, Map]:
    """UD2M's stacked physics for a suite ``LinearOperator`` ``op`` and the chain's state x_t ([-1, 1] units):
    x_t' = (x_t + sqrt(abar_t)) / 2 = sqrt(abar_t) x_0 + sqrt(1 - abar_t) / 2 eps in [0, 1] units, so the second
    block is sqrt(abar_t) I with noise std sqrt(1 - abar_t) / 2. Returns the stack and ``y -> (w_1 y, w_2 x_t')``.
    Noise stds are floored at ``sigma_floor`` (a noiseless y would make every weight infinite)."""
    from .base import LinearOperator
    if not isinstance(op, LinearOperator):
        raise ValueError(f"RAM needs a linear operator; {type(op).__name__} is not one")
    abar_t = _as_tensor(abar_t, x_t)
    root = abar_t.sqrt()
    sig_y = _as_tensor(max(op.sigma_y, sigma_floor), x_t).expand_as(abar_t)
    sig_t = ((1 - abar_t).sqrt() / 2).clamp_min(sigma_floor)
    scale = lambda u: u * _per_image(root, u.ndim)      # sqrt(abar_t) I, its own adjoint
    stack = WhitenedStack([(op.A, op.A_adjoint, sig_y), (scale, scale, sig_t)])
    x_prime = (x_t + _per_image(root, x_t.ndim)) / 2
    return stack, lambda y: stack.measurements([y, x_prime])
