"""LoRA adapters on a frozen pixel denoiser (peft), as UD2M fine-tunes its diffusion prior.

    W x  ->  W x + (alpha / r) B A x,   A in R^{r x d_in}, B in R^{d_out x r}, W frozen,

on the attention projections (the official code's ``qkv`` and ``proj_out``; ``to_q``, ``to_k``, ``to_v``,
``to_out.0`` in diffusers), rank 5, alpha 1.5. peft initialises B = 0, so an untrained adapter is the
prior itself (the official code draws A and B Xavier-normal, which starts away from the prior).
An adapter file holds the LoRA tensors, the method's learnt scalars (names starting with ``psi.``) and,
for UD2M+RAM, the warm-start network fine-tuned with it (``ram.``, read by ``priors.ram.load_ram``).
"""
from __future__ import annotations

import torch

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")          # diffusers' attention (the embedded pixel prior)
ADM_TARGETS = ("qkv", "proj_out")                        # guided-diffusion's attention (ADM; deepinv's DiffUNet)


def lora_targets(unet: torch.nn.Module) -> tuple[str, ...]:
    """The attention projections the official code adapts, by architecture: ``qkv`` and ``proj_out`` (1 x 1
    convolutions) in guided-diffusion's U-Nets, the query / key / value / output projections in diffusers'."""
    names = {name.rsplit(".", 1)[-1] for name, _ in unet.named_modules()}
    return ADM_TARGETS if "qkv" in names else TARGETS


def add_lora(unet: torch.nn.Module, rank: int = 5, alpha: float = 1.5, targets=None) -> list[torch.nn.Parameter]:
    """Inject LoRA layers into ``unet`` in place (on ``lora_targets(unet)`` unless ``targets`` is given);
    freeze the rest; return the trainable LoRA parameters."""
    from peft import LoraConfig, inject_adapter_in_model
    targets = targets or lora_targets(unet)
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets)), unet)
    params = []
    for name, p in unet.named_parameters():
        p.requires_grad_("lora_" in name)
        if "lora_" in name:
            params.append(p)
    if not params:
        raise ValueError(f"no layer of {type(unet).__name__} matches the LoRA targets {targets}")
    return params


def lora_state(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in unet.state_dict().items() if "lora_" in k}


def load_adapter(prior, ck: dict) -> tuple[dict[str, float], dict]:
    """Put the adapter of a resolved checkpoint on ``prior.unet``: see ``apply_adapter``."""
    return apply_adapter(prior, ck["path"], ck["sha256"], ck.get("name", "adapter"))


def apply_adapter(prior, path, sha256: str | None, name: str = "adapter") -> tuple[dict[str, float], dict]:
    """Put the adapter file ``path`` (sha256-checked) on ``prior.unet`` in place; return its learnt scalars and
    its training card. The prior keeps counting the adapted network's calls."""
    import json

    from safetensors import safe_open

    from ipbench.store.files import verify_sha256
    verify_sha256(path, sha256)
    with safe_open(str(path), "pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        card = json.loads((f.metadata() or {}).get("card", "{}"))
    base, prior_sha = card.get("base_sha256"), getattr(prior, "weights_sha256", None)
    if base and prior_sha and base != prior_sha:
        raise ValueError(f"{name} was distilled from the pixel DDPM {card.get('base')!r} with sha256 {base[:12]}..., "
                         f"not from this prior ({prior_sha[:12]}...): retrain it on this prior (target `retrain`)")
    add_lora(prior.unet, card.get("rank", 5), card.get("alpha", 1.5))
    lora = {k: v for k, v in state.items() if not k.startswith(("psi.", "ram."))}
    missing = set(lora_state(prior.unet)) - set(lora)
    try:
        unexpected = prior.unet.load_state_dict(lora, strict=False).unexpected_keys
    except RuntimeError as err:                                  # shapes differ
        raise ValueError(f"{name} does not fit the prior's network: {str(err).splitlines()[1].strip()}") from None
    if missing or unexpected:
        raise ValueError(f"{name} does not fit the prior's network: missing {sorted(missing)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]}")
    prior.unet.requires_grad_(False).eval()
    return {k[4:]: float(v) for k, v in state.items() if k.startswith("psi.")}, card
