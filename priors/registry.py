"""Which prior a solver gets: ``load_prior(kind, profile_priors)``.

The solver registry (``suite.registry``) gives each solver's prior kind: 'pixel' (eps(x_t, t) on [-1, 1]
images), 'latent' (encode / decode / embed / eps(z_t, t, c)), 'consistency' (adds x0(z_t, t, c)) or 'bridge'
(I2SB's eps(x_n, n) with its bridge schedule, one network per task); the profile's ``priors`` config names the
checkpoint behind each kind, so a solver never knows its profile.
"""
from __future__ import annotations

import re

from ipbench.suite.config import checkpoint

KINDS = ("pixel", "latent", "consistency", "bridge")
# ``priors.image_text`` (optional) names the image-text model attached to the latent priors
# (``prior.image_features``; TReg's adaptive negation).


def prior_files(name: str) -> list[str]:
    """The shipped weight files a prior reads (inputs of the solve jobs), empty for fetched ones."""
    try:
        entry = checkpoint(name)
    except ValueError:                       # a composite paper prior (e.g. sdxl_dmd2): fetched, not shipped
        return []
    files = [entry["path"]] if "path" in entry else []
    for dep in entry.get("needs", []):
        files += prior_files(dep)
    return files


def train_cli_tokens(args: dict) -> list[str]:
    """A checkpoint's ``train.args`` as the tokens of its training command: ``--key value`` per entry,
    ``--key`` alone for ``true`` (a switch such as ``bf16``), nothing for ``false``. Keys and values are
    checked first (``check_train_args``): they become arguments of a shell command."""
    check_train_args(args)
    out = []
    for k, v in args.items():
        if v is not False:
            out += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out


def train_cli_args(args: dict) -> str:
    """``train_cli_tokens`` as one command-line string."""
    import shlex
    return " ".join(map(shlex.quote, train_cli_tokens(args)))


SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,/+-]+$")


def check_train_args(args: dict, where: str = "train.args") -> dict:
    """Keys are option names, values numbers, switches or plain names (letters, digits, ``_.,/+-``): nothing
    that a shell would read as more than one word or as a command."""
    for k, v in args.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(k)):
            raise ValueError(f"{where}: {k!r} is not an option name (letters, digits, _)")
        if isinstance(v, bool) or isinstance(v, (int, float)):
            continue
        if not isinstance(v, str) or not SAFE_VALUE.match(v):
            raise ValueError(f"{where}: the value of {k!r}, {v!r}, is not a number, a switch or a plain name "
                             "(letters, digits and _.,/+- only)")
    return args


def train_spec_of(command: str) -> tuple[str, dict]:
    """(module, train.args) of a training command ``python -m MODULE --key value ... --switch``, the
    inverse of ``train_cli_args`` (``--out`` dropped: the retrain rule chooses it); numbers are parsed."""
    import shlex
    words = shlex.split(command)
    if words[1:2] != ["-m"] or len(words) < 3:
        raise ValueError(f"not a 'python -m MODULE ...' training command: {command!r}")
    module, words, args = words[2], words[3:], {}
    if not module.startswith("ipbench."):     # cards written before the suite's package name
        module = f"ipbench.{module}"
    while words:
        if not words[0].startswith("--"):
            raise ValueError(f"unexpected {words[0]!r} in the training command {command!r}")
        key, words = words[0][2:].replace("-", "_"), words[1:]
        if words and not words[0].startswith("--"):
            args[key], words = _number(words[0]), words[1:]
        else:
            args[key] = True
    args.pop("out", None)
    if not re.fullmatch(r"ipbench(\.[a-z_][a-z0-9_]*)+", module):
        raise ValueError(f"the training module {module!r} of {command!r} is not a module of the suite")
    return module, check_train_args(args, f"the training command {command!r}")


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load_prior(kind: str, priors: dict):
    if kind not in KINDS:
        raise ValueError(f"unknown prior kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind not in priors:
        raise ValueError(f"the profile names no {kind} prior (config key priors.{kind})")
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
        from .similarity import load_similarity
        return load_similarity()
    if name == "clip_vit_l14":
        from .paper import CLIPImageFeatures, load_clip
        return CLIPImageFeatures(*load_clip())
    raise ValueError(f"unknown image-text model {name!r}; valid: similarity, clip_vit_l14")


def _load(name: str):
    from ipbench.suite.config import trained_by
    pixel_ddpms = trained_by("ipbench.priors.pixel_ddpm")
    if name in pixel_ddpms:
        from .pixel_ddpm import load_pixel_prior
        return load_pixel_prior(name)
    if name in ("latent_dm", "lcm"):
        from .latent_dm import load_latent_dm
        return load_latent_dm(name)
    if name.startswith("i2sb_"):
        from .bridge_training import load_bridge
        return load_bridge(name)
    from . import paper
    loaders = {"adm_imagenet256_uncond": paper.load_adm_imagenet256, "sd15": paper.load_sd15,
               "sd15_lcm_lora": lambda: paper.load_sd15(lcm_lora=True), "sdxl_dmd2": paper.load_sdxl_dmd2}
    if name not in loaders:
        raise ValueError(f"unknown prior {name!r}; valid: {', '.join(pixel_ddpms)}, latent_dm, lcm, "
                         f"{', '.join(loaders)}")
    return loaders[name]()
