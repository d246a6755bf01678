"""Wan2.1 text-to-video behind the suite's video-prior protocol: the paper profile's video consistency model of
LVTINO, CausVid's bidirectional few-step generator (DMD-distilled Wan2.1-T2V-1.3B, tianweiy/CausVid).

Wan is a flow-matching model: z_s = (1 - s) z_0 + s eps with s = t / 1000, and the transformer predicts the
velocity v = eps - z_0, so z_0 = z_s - s v. The protocol the suite's solvers speak is the variance-preserving one
(z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps): the two are the same point up to a scale,

    abar_t = (1 - s)^2 / ((1 - s)^2 + s^2),   z_s = r z_t,   r = sqrt((1 - s)^2 + s^2),

so ``abar`` below is indexed by Wan's own timesteps, and LVTINO's flow timesteps map to the points of Wan's
shifted grid nearest them (``methods.lvtino.vp_timestep_of_flow``): [757, 522, 376, 255, 128], the sigmas the
official scheduler reads for [757, 522, 375, 255, 125]; the network is given the grid point's timestep where the
official code passes the requested one (a difference of at most 3 of 1,000). Clips are (B, T, C, H, W) in [0, 1]; Wan's VAE compresses time by 4
(T = 1 + 4 (F - 1) frames -> F latent frames), its latents normalised by the VAE's per-channel mean and std;
prompts go through the UMT5 encoder, zeroed past each prompt's length, as the Wan pipeline does.
"""
from __future__ import annotations

import torch

from .calls import CallLog, LoggedAutoencoder


def strip_prefix(state: dict, prefix: str = "model.") -> dict:
    """CausVid saves its generator wrapper's state: the Wan model's keys under ``model.``."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def wan_transformer_state(causvid_state: dict) -> dict:
    """CausVid's ``generator`` state (original Wan names under ``model.``) in diffusers' ``WanTransformer3DModel``
    names (diffusers' own single-file converter, on a copy: it empties the dict it is given)."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
    return convert_wan_transformer_to_diffusers(dict(strip_prefix(causvid_state)))


class WanVideoPrior(LoggedAutoencoder):
    """Video consistency model on Wan2.1: ``encode`` ([0, 1] clips (B, T, C, H, W) -> normalised latents
    (B, F, c, h, w)), ``decode``, ``embed`` and the one-step ``x0(z_t, t, c)`` (one call per clip: one NFE)."""
    role = "video "
    generic_prompt = "a high resolution video"          # LVTINO's prompt file

    def __init__(self, vae, transformer, tokenizer, text_encoder, max_length: int = 512):
        self.vae, self.transformer = vae.eval(), transformer.eval()
        self.tokenizer, self.text_encoder, self.max_length = tokenizer, text_encoder.eval(), max_length
        s = torch.arange(1000, dtype=torch.float64) / 1000
        self.abar = ((1 - s) ** 2 / ((1 - s) ** 2 + s**2)).float()
        cfg = vae.config
        self.latent_mean = torch.tensor(cfg.latents_mean).view(1, -1, 1, 1, 1)
        self.latent_std = torch.tensor(cfg.latents_std).view(1, -1, 1, 1, 1)
        self.nfe = 0
        self.ae_calls = 0
        self.calls = CallLog()

    def to(self, device) -> "WanVideoPrior":
        for m in (self.vae, self.transformer, self.text_encoder):
            m.to(device)
        self.abar = self.abar.to(device)
        self.latent_mean, self.latent_std = self.latent_mean.to(device), self.latent_std.to(device)
        return self

    def latent_shape(self, clip_shape) -> tuple[int, ...]:
        """(F, C, h, w) of the latents of (T, C', H, W) clips."""
        T, _, H, W = clip_shape
        cfg = self.vae.config
        return (1 + (T - 1) // cfg.scale_factor_temporal, cfg.z_dim, H // cfg.scale_factor_spatial,
                W // cfg.scale_factor_spatial)

    def _encode(self, x):
        v = (x * 2 - 1).transpose(1, 2).to(self.vae.dtype)                    # (B, C, T, H, W)
        mu = self.vae.encode(v).latent_dist.mean.float()
        return ((mu - self.latent_mean) / self.latent_std).transpose(1, 2)

    def _decode(self, z):
        mu = z.transpose(1, 2) * self.latent_std + self.latent_mean
        return ((self.vae.decode(mu.to(self.vae.dtype)).sample.float() + 1) / 2).transpose(1, 2)

    @torch.no_grad()
    def _tokens(self, prompts: list[str]) -> torch.Tensor:
        t = self.tokenizer(list(prompts), padding="max_length", truncation=True, max_length=self.max_length,
                           add_special_tokens=True, return_attention_mask=True, return_tensors="pt")
        mask = t.attention_mask.to(self.text_encoder.device)
        hidden = self.text_encoder(t.input_ids.to(mask.device), mask).last_hidden_state
        return hidden * mask[..., None].to(hidden.dtype)

    def embed(self, prompts: list[str]) -> torch.Tensor:
        """(B, L, D) UMT5 states, zero past each prompt's tokens; each distinct prompt encoded once."""
        unique = list(dict.fromkeys(prompts))
        self.calls.record("text encoder", lambda _: self._tokens(unique), torch.empty(len(unique)))
        return self._tokens(unique).float()[[unique.index(p) for p in prompts]]

    def x0(self, z_t: torch.Tensor, t, c: torch.Tensor, items: int | None = None) -> torch.Tensor:
        """The generator's z_0 from the variance-preserving z_t at Wan timestep t."""
        self.nfe += z_t.shape[0] if items is None else items
        self.calls.record(f"{self.role}denoiser", lambda z, c: self._x0(z, 500, c), z_t, c)
        return self._x0(z_t, t, c)

    def _x0(self, z_t, t, c):
        s = float(t) / 1000
        z_s = z_t * ((1 - s) ** 2 + s**2) ** 0.5
        dtype = self.transformer.dtype
        timestep = torch.full((z_t.shape[0],), float(t), device=z_t.device)
        v = self.transformer(z_s.transpose(1, 2).to(dtype), timestep, encoder_hidden_states=c.to(dtype)).sample
        return z_s - s * v.transpose(1, 2).float()
