"""Which prior a solver gets: ``load_prior(kind, profile_priors)``, the one place that turns the profile's
checkpoint names into loaded priors (the loaders in ``priors/`` take resolved checkpoints).

The solver registry (``suite.registry``) gives each solver's prior kind: 'pixel' (eps(x_t, t) on [-1, 1]
images), 'latent' (encode / decode / embed / eps(z_t, t, c)), 'consistency' (adds x0(z_t, t, c)) or 'bridge'
(I2SB's eps(x_n, n) with its bridge schedule, one network per task), 'video' (LVTINO's pair: the video
consistency model of ``priors.video`` and the image one of ``priors.video_frames``) or 'video_latent' (VISION-XL's
image latent DM, ``priors.video_latent``); the profile's ``priors`` config names the checkpoint behind each kind,
so a solver never knows its profile.
"""
from __future__ import annotations

import functools

from ipbench.store.catalog import entries, resolve, trained_by

KINDS = ("pixel", "latent", "consistency", "bridge", "video", "video_latent")
# ``priors.image_text`` (optional) names the image-text model attached to the latent priors
# (``prior.image_features``; TReg's adaptive negation).


def load_prior(kind: str, priors: dict, precision: str = "float32"):
    """The prior of ``kind`` behind the profile's ``priors``, its weights frozen, its networks' ``precision`` set
    (``priors/precision.py``)."""
    from ipbench.priors.precision import set_precision
    return set_precision(_load_kind(kind, priors), precision)


def _load_kind(kind: str, priors: dict):
    if kind not in KINDS:
        raise ValueError(f"unknown prior kind {kind!r}; valid: {', '.join(KINDS)}")
    from ipbench.suite.registry import prior_keys
    for key in prior_keys(kind):
        if key not in priors:
            raise ValueError(f"the profile names no {key} prior (config key priors.{key})")
    if kind == "video":
        from ipbench.priors.video_dm import VideoImagePair
        return VideoImagePair(frozen(_load(priors["video"])), frozen(_load(priors["video_frames"])))
    prior = _load(priors[kind])
    if kind in ("latent", "consistency") and "image_text" in priors:
        prior.image_encoder = load_image_text(priors["image_text"])
    return frozen(prior)


def frozen(prior):
    """The prior with every network's weights frozen: solvers differentiate with respect to images,
    latents or embeddings, never weights, so no backward pass computes or stores weight gradients."""
    import torch
    for value in vars(prior).values():
        if isinstance(value, torch.nn.Module):
            value.requires_grad_(False)
    return prior


def load_image_text(name: str):
    """The image tower of an image-text model: [0, 1] images -> unit vectors in the token space."""
    if name == "similarity":
        from ipbench.priors.similarity import load_similarity
        return load_similarity(resolve(name))
    if name == "clip_vit_l14":
        from ipbench.priors.paper import CLIPImageFeatures, load_clip
        return CLIPImageFeatures(*load_clip())
    raise ValueError(f"unknown image-text model {name!r}; valid: similarity, clip_vit_l14")


def _load(name: str):
    pixel_ddpms = trained_by("ipbench.training.pixel_ddpm")
    if name in pixel_ddpms:
        from ipbench.priors.pixel_ddpm import load_pixel_prior
        return load_pixel_prior(resolve(name))
    if name in ("latent_dm", "lcm"):
        from ipbench.priors.latent_dm import load_latent_dm
        return load_latent_dm(resolve(name), consistency=name == "lcm")
    if name in trained_by("ipbench.training.video_dm") + trained_by("ipbench.training.vcm"):
        from ipbench.priors.video_dm import load_video_dm
        return load_video_dm(resolve(name), consistency=name in trained_by("ipbench.training.vcm"))
    if name in trained_by("ipbench.training.bridge"):
        from ipbench.priors.bridge import load_bridge
        return load_bridge(resolve(name))
    from ipbench.priors import paper
    loaders = {"adm_imagenet256_uncond": paper.load_adm_imagenet256, "sd15": paper.load_sd15,
               "sd15_lcm_lora": lambda: paper.load_sd15(lcm_lora=True), "sdxl_dmd2": paper.load_sdxl_dmd2,
               "sdxl_dmd2_768x1280": lambda: paper.load_sdxl_dmd2(resolution=(768, 1280)),
               "causvid_bidirectional": paper.load_causvid,
               "sdxl_base_768x1280": lambda: paper.load_sdxl_base(resolution=(768, 1280)),
               **{n: functools.partial(paper.load_i2sb, n) for n in entries() if n.startswith("i2sb_imagenet256_")}}
    if name not in loaders:
        raise ValueError(f"unknown prior {name!r}; valid: {', '.join(pixel_ddpms)}, latent_dm, lcm, "
                         f"{', '.join(loaders)}")
    return loaders[name]()
