"""The embedded warm start of UD2M+RAM: a small reconstruct-anything network (after RAM, Terris, Hurault,
Song, Tachella, arXiv 2503.08915), one network for every pixel task, which sees the task only through its
inputs, as RAM sees the stacked physics [A; sqrt(abar_t) I] with the measurements (y, x_t):

    f_psi(x_t, y) = b + R_psi([b, x_t, 2 sigma_y], t),   b = 2 A^dagger y - 1   ([-1, 1] images)

with A^dagger the truncated pseudo-inverse (the decoded image for JPEG, the observed pixels for inpainting).
R_psi is a small diffusers UNet2DModel with the time embedding of t, trained by MSE on x_0 over the tasks
in turn, t ~ U{0..T-1} per image (``python -m ipbench.training.ram``). UD2M calls it once per sampler step (NFE
9 + 3 = 12 for K = N = 3) and fine-tunes it jointly with its adapter at 0.1 x the lr.

RAM itself (deepinv's ``RAM``: a DRUNet with Krylov blocks conditioned on A and A^T) is the ``paper``
profile's warm start, ``PhysicsRAMWarmStart``: it sees UD2M's whitened stack [A; sqrt(abar_t) I] with the
measurements (y, x_t') (physics/deepinv_physics.py). ``load_ram`` gives either, by checkpoint.
"""
from __future__ import annotations

import torch
from diffusers import UNet2DModel

from .precision import autocast

RCOND = 0.03                      # the truncation of A^dagger, as UD2M's f_psi without RAM (methods/ud2m.py)
TASKS = ("px_deblur_gaussian", "px_deblur_uniform", "px_sr4", "px_jpeg10", "px_inpaint70")
CONFIG = dict(sample_size=32, in_channels=3, out_channels=1, layers_per_block=1, block_out_channels=(16, 32, 32),
              down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3, norm_num_groups=8)


def build_net(**overrides) -> UNet2DModel:
    return UNet2DModel(**{**CONFIG, **overrides})


def back_projection(y: torch.Tensor, op) -> torch.Tensor:
    """b = 2 A^dagger y - 1, clamped to [-1, 1]."""
    return 2 * op.A_dagger(y, rcond=RCOND).clamp(0, 1) - 1


class RAMWarmStart:
    """f_psi(x_t, t, y, op) in [-1, 1]; each call is one network evaluation per image, counted by ``counter``
    (the prior whose NFE the solver reports) when given."""

    def __init__(self, net: torch.nn.Module, counter=None):
        self.net = net
        self.counter = counter
        self._last = (None, None, None)             # (y, op, b): b depends on y only, not on the sampler step

    def inputs(self, x_t, y, op) -> tuple[torch.Tensor, torch.Tensor]:
        last_y, last_op, b = self._last
        if last_y is not y or last_op is not op:
            b = back_projection(y, op)
            self._last = (y, op, b)
        b = b.to(x_t)
        return torch.cat([b, x_t, torch.full_like(b, 2 * op.sigma_y)], 1), b

    def _run(self, inp: torch.Tensor, t) -> torch.Tensor:
        t = torch.as_tensor(t, device=inp.device).expand(inp.shape[0])
        with autocast(inp, getattr(self.counter, "bf16", False)):      # the precision of the prior it serves
            return self.net(inp, t).sample.to(inp.dtype)

    def __call__(self, x_t, t, y, op) -> torch.Tensor:
        inp, b = self.inputs(x_t, y, op)
        if self.counter is not None:
            self.counter.nfe += x_t.shape[0]
            self.counter.calls.record("RAM", lambda z: self._run(z, 500), inp)
        return b + self._run(inp, t)

    def parameters(self):
        return self.net.parameters()


class PhysicsRAMWarmStart:
    """RAM proper on UD2M's stacked physics (the official UD2M's ``RAM_Initialization``):

        f_psi(x_t, t, y) = 2 RAM((w_1 y, w_2 x_t'), [w_1 A; w_2 sqrt(abar_t) I]) - 1,   x_t' = (x_t + sqrt(abar_t)) / 2,

    w_i = m / sigma_i whitening both blocks to the smaller noise std m (physics.deepinv_physics.ud2m_stack).
    ``t``: one step for the batch or one per image. Needs a linear operator (UD2M+RAM has no JPEG entry)."""

    def __init__(self, net: torch.nn.Module, counter=None, abar: torch.Tensor | None = None):
        from .schedules import alpha_bar
        self.net = net
        self.counter = counter
        abar = abar if abar is not None else getattr(counter, "abar", None)     # the prior's schedule, if given
        self.abar = (abar if abar is not None else alpha_bar("linear", 1000)).float()

    def __call__(self, x_t, t, y, op) -> torch.Tensor:
        from deepinv.utils import TensorList

        from ipbench.physics.deepinv_physics import ud2m_stack
        abar_t = self.abar.to(x_t.device)[torch.as_tensor(t, device=x_t.device)].to(x_t.dtype)
        stack, measurements = ud2m_stack(op, x_t, abar_t, sigma_floor=self.net.sigma_threshold)
        ys = measurements(y)
        if self.counter is not None:
            self.counter.nfe += x_t.shape[0]
            self.counter.calls.record("RAM", lambda a, b: self.net(TensorList([a, b]), stack), *ys)
        return 2 * self.net(ys, stack) - 1

    def parameters(self):
        return self.net.parameters()


def build_deepinv_ram() -> torch.nn.Module:
    from .paper import deepinv_models
    return deepinv_models().RAM(pretrained=False, device="cpu")


def load_ram(ck: dict, counter=None) -> RAMWarmStart | PhysicsRAMWarmStart:
    """A RAM network from its resolved checkpoint (sha256-checked): a published one (deepinv's RAM, fetched in
    the ``paper`` profile), a shipped one, or the copy that a UD2M+RAM adapter fine-tuned (its tensors named
    ``ram.*``)."""
    from safetensors.torch import load_file

    from ipbench.store.files import verify_sha256
    name = ck.get("name", "ram")
    if "files" in ck:
        from .paper import load_ram as load_published
        return load_published(name, counter=counter)
    path = ck["path"]
    verify_sha256(path, ck["sha256"])
    state = load_file(str(path))
    if any(k.startswith("ram.") for k in state):
        state = {k[4:]: v for k, v in state.items() if k.startswith("ram.")}
    return ram_from_state(state, name, counter)


def ram_from_state(state: dict, name: str, counter=None) -> RAMWarmStart | PhysicsRAMWarmStart:
    """The frozen warm start holding ``state``: deepinv's RAM where the tensor names are its, else R_psi."""
    deepinv_ram = any(k.startswith("m_head.") for k in state)
    net = build_deepinv_ram() if deepinv_ram else build_net()
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{name} holds no RAM network of this architecture: {str(err).splitlines()[0]}") from None
    net = net.eval().requires_grad_(False)
    return PhysicsRAMWarmStart(net, counter) if deepinv_ram else RAMWarmStart(net, counter)
