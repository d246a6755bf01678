"""Latent priors behind the protocol the latent solvers use (LATINO, LATINO-PRO, LDPS, PSLD, P2L, TReg).

``LatentDiffusionPrior``: ``encode`` ([0, 1] images -> scaled latents), ``decode``, ``embed(prompts)``
(token embeddings of the frozen text encoder) and the conditioned ``eps(z_t, t, c)``.
``ConsistencyPrior`` adds the one-step ``x0(z_t, t, c)`` of a latent consistency model, with the
boundary-condition scalings of diffusers' ``LCMScheduler`` (sigma_data = 0.5, timestep scaling 10):

    f(z_t, t) = c_skip(t) z_t + c_out(t) z0_hat(z_t, t),   c_skip(0) = 1, c_out(0) = 0.

``nfe`` counts denoiser evaluations per image; ``ae_calls`` counts encoder and decoder calls.
"""
from __future__ import annotations

import torch

from ipbench.physics.base import standard_normal

from .calls import CallLog, LoggedAutoencoder
from .diffusion import add_noise, tweedie
from .precision import autocast, differentiated
from .schedules import alpha_bar


def boundary_scalings(t, sigma_data: float = 0.5, timestep_scaling: float = 10.0):
    """(c_skip, c_out) of the LCM parametrisation at integer timesteps t."""
    s = torch.as_tensor(t, dtype=torch.float64) * timestep_scaling
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s / (s**2 + sigma_data**2).sqrt()
    return c_skip, c_out


def consistency_output(z_t: torch.Tensor, z0_hat: torch.Tensor, t) -> torch.Tensor:
    """f = c_skip(t) z_t + c_out(t) z0_hat, t a scalar or one timestep per item."""
    c_skip, c_out = boundary_scalings(t)
    shape = (-1,) + (1,) * (z_t.ndim - 1) if c_skip.ndim else ()
    return c_skip.view(shape).to(z_t) * z_t + c_out.view(shape).to(z_t) * z0_hat


class LatentDiffusionPrior(LoggedAutoencoder):
    """``encode``: [0, 1] images -> latents (posterior mean x scaling factor); ``decode`` the inverse map."""
    generic_prompt = ""        # the starting prompt where a solver is given none (the official codes: empty)
    role = ""                  # prefixes the names of its network calls where two priors share one log (LVTINO)

    def __init__(self, vae, unet, scaling_factor: float, text_encoder=None, schedule: str = "scaled_linear",
                 image_encoder=None):
        self.vae, self.unet = vae.eval(), unet.eval()
        self.scaling_factor = float(scaling_factor)
        self.text = text_encoder
        self.image_encoder = image_encoder
        self.abar = alpha_bar(schedule).float()
        self.nfe = 0
        self.ae_calls = 0
        self.calls = CallLog()

    def to(self, device) -> "LatentDiffusionPrior":
        self.vae.to(device)
        self.unet.to(device)
        if self.image_encoder is not None:
            self.image_encoder.to(device)
        self.abar = self.abar.to(device)
        return self

    def noise_like_latents(self, op, y: torch.Tensor, generator) -> torch.Tensor:
        """Standard normal latents (per-item generators) for the images behind the measurements y."""
        from ipbench.physics.base import standard_normal
        z_shape = self.latent_shape(op.A_dagger(y[:1], rcond=0.03).shape[1:])
        return standard_normal((y.shape[0], *z_shape), generator, dtype=y.dtype, device=y.device)

    def latent_shape(self, image_shape) -> tuple[int, ...]:
        """(C, h, w) of the latents of (C', H, W) images."""
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (self.vae.config.latent_channels, image_shape[-2] // factor, image_shape[-1] // factor)

    # The networks run in the dtype they were loaded in (config/checkpoints.yaml `dtype`: the official codes' fp16
    # for SD 1.5 and SDXL); what the solvers see is float32, so their data steps stay in float32.
    # ``bf16``: bfloat16 autocast in the forward-only calls of the autoencoder and the denoiser (priors/precision.py)
    bf16 = False

    def _encode(self, x):
        with autocast(x, self.bf16 and not differentiated(x)):
            z = self.vae.encode((x * 2 - 1).to(self.vae.dtype)).latent_dist.mean
        return z.float() * self.scaling_factor

    def _decode(self, z):
        with autocast(z, self.bf16 and not differentiated(z)):
            x = self.vae.decode((z / self.scaling_factor).to(self.vae.dtype)).sample
        return (x.float() + 1) / 2

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, tokens, dim) token embeddings; each distinct prompt is encoded once."""
        if self.text is None:
            from .text import TextEncoder
            self.text = TextEncoder()
        unique = list(dict.fromkeys(prompts))
        # the text encoder is a network call too; its replay (priors/calls.py) re-encodes the same prompts
        self.calls.record("text encoder", lambda _: self.text.tokens(unique), torch.empty(len(unique)))
        return self.text.tokens(unique).float()[[unique.index(p) for p in prompts]]

    def eps(self, z_t: torch.Tensor, t, c: torch.Tensor, items: int | None = None) -> torch.Tensor:
        """``items``: how many NFE the call counts (default one per row of z_t; the frames of a clip run as one
        batch and count once per clip)."""
        self.nfe += z_t.shape[0] if items is None else items
        self.calls.record(f"{self.role}denoiser", lambda z, c: self._eps(z, 500, c), z_t, c)
        return self._eps(z_t, t, c)

    def eps_cfg(self, z_t: torch.Tensor, t, c: torch.Tensor, uc: torch.Tensor, w: float) -> torch.Tensor:
        """Classifier-free guidance eps_uc + w (eps_c - eps_uc), the two branches as one batched call:
        one NFE per image, the convention of the published NFE of guided samplers (TReg's 200)."""
        self.nfe += z_t.shape[0]
        zz, cc = torch.cat([z_t, z_t]), torch.cat([uc.expand_as(c), c])
        self.calls.record("denoiser (guided pair)", lambda z, c: self._eps(z, 500, c), zz, cc)
        e_uc, e_c = self._eps(zz, t, cc).chunk(2)
        return e_uc + w * (e_c - e_uc)

    def _eps(self, z_t, t, c, **conditions):
        t = torch.as_tensor(t, device=z_t.device).expand(z_t.shape[0])
        dtype = self.unet.dtype
        with autocast(z_t, self.bf16 and not differentiated(z_t, c)):
            eps = self.unet(z_t.to(dtype), t, encoder_hidden_states=c.to(dtype), **conditions).sample
        return eps.to(z_t.dtype)

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm image features in the space of the token embeddings (the image tower of the
        profile's image-text model: the digit-text similarity network, or CLIP ViT-L/14)."""
        if self.image_encoder is None:
            raise ValueError("this latent prior has no image-text model (config key priors.image_text)")
        self.calls.record("image-text encoder", self.image_encoder, x)
        return self.image_encoder(x)


class ConsistencyPrior(LatentDiffusionPrior):
    def x0(self, z_t: torch.Tensor, t, c: torch.Tensor, items: int | None = None) -> torch.Tensor:
        """One consistency step: the latent the LCM maps z_t to."""
        return consistency_output(z_t, tweedie(z_t, self.eps(z_t, t, c, items), self.abar[int(t)]), int(t))


def sae_step(prior, x: torch.Tensor, t: int, denoise, generator=None) -> torch.Tensor:
    """The stochastic auto-encoder step of LATINO's family: D(denoise(sqrt(abar_t) E(x) + sqrt(1 - abar_t) eps, t))
    in [0, 1], eps ~ N(0, I) from ``generator`` (one per item)."""
    z = prior.encode(x)
    z_t = add_noise(z, standard_normal(z.shape, generator, dtype=z.dtype, device=z.device), prior.abar[t])
    return prior.decode(denoise(z_t, t)).clamp(0, 1)
