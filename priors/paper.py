"""The published checkpoints of the ``paper`` profile, behind the same protocols as the embedded priors.

Every entry of ``config/checkpoints.yaml`` with ``hub:`` (or ``url:``) lists the ``files`` it needs;
``materialize`` fetches each one through ``datasets.fetch`` at a pinned commit (the entry's ``revision``
when it is a commit hash, else the commit its branch had at the first fetch, locked), its sha256 pinned or
recorded in the lock file (``resources/checksums.lock``) on first download and checked on every later use, into
``resources/checkpoints/<name>/`` keeping the repository's layout, and the loaders below open that
folder with ``local_files_only=True``: nothing is resolved by the hub client itself.

* ``load_sd15(lcm_lora=False)`` -- SD 1.5 (LDPS, PSLD, P2L, TReg); with the LCM-LoRA fused, the
  LATINO-1.5 variant (``ConsistencyPrior``).
* ``load_sdxl_dmd2()`` -- SDXL base with the DMD2 4-step UNet and the fp16-fix VAE (LATINO,
  LATINO-PRO), a ``ConsistencyPrior`` whose pooled text embedding and time ids stay fixed, as the
  official LATINO-PRO code keeps ``added_cond_kwargs`` at the initial prompt.
* ``load_adm_imagenet256()`` -- ADM ImageNet-256 (pixel solvers), through deepinv's ``DiffUNet``.
* ``load_clip()`` -- CLIP ViT-L/14 (TReg's adaptive negation).
* ``load_ram()`` -- deepinv's RAM (Terris et al. 2025), UD2M+RAM's warm start.
* ``load_vidue()`` -- VIDUE (Shang et al. 2023), the frame interpolation behind LVTINO's Problem C warm start.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import torch

from ipbench.store.catalog import checkpoint

from .latent import ConsistencyPrior, LatentDiffusionPrior

RESOURCES = Path("resources") / "checkpoints"     # under the run's working directory, as the datasets
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def pinned_revision(name: str, entry: dict, lock, endpoint: str | None = None) -> str | None:
    """The commit a hub checkpoint is fetched at: its ``revision`` when that is a commit hash; otherwise the
    commit the branch pointed to at the first fetch, recorded in the lock file as ``name@branch`` and used from
    then on (asked of the hub's API once, never in an offline job)."""
    if "hub" not in entry:
        return None
    revision = str(entry.get("revision", "main"))
    if COMMIT.match(revision):
        return revision
    key = f"{name}@{revision}"
    if lock.get(key):
        return lock.get(key)
    from ipbench.datasets.fetch import DEFAULT_ENDPOINT, offline
    if offline():
        raise FileNotFoundError(f"{name}: no commit of {entry['hub']}@{revision} is locked yet, and this job runs "
                                "offline: the fetch stage (rule fetch_checkpoint) locks and fetches it first")
    import json
    import urllib.request
    base = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    kind = {"model": "models", "dataset": "datasets"}[entry.get("repo_type", "model")]
    url = f"{base}/api/{kind}/{entry['hub']}/revision/{revision}"
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            commit = json.loads(r.read())["sha"]
    except (OSError, ValueError, KeyError) as err:
        raise ConnectionError(f"{name}: could not resolve {entry['hub']}@{revision} to a commit ({url}): {err}") from None
    if not COMMIT.match(commit):
        raise ValueError(f"{name}: the hub answered {commit!r} for {entry['hub']}@{revision}, not a commit hash")
    lock.record(key, commit)
    return commit


def materialize(name: str, dest: str | os.PathLike | None = None, endpoint: str | None = None,
                lock_path: str | os.PathLike | None = None) -> Path:
    """Fetch and verify every file of checkpoint ``name`` at its pinned commit; return the folder holding them."""
    return _materialize(name, dest, endpoint, lock_path)[0]


def _materialize(name, dest=None, endpoint=None, lock_path=None) -> tuple[Path, str | None, dict]:
    """``materialize``, also returning the commit and each file's verified sha256."""
    from ipbench.datasets.fetch import DEFAULT_LOCK, Lock, fetch
    entry = checkpoint(name)
    if "files" not in entry:
        raise ValueError(f"checkpoint {name!r} lists no files to fetch")
    root = Path(dest or RESOURCES) / name
    lock = Lock(lock_path or DEFAULT_LOCK)
    commit = pinned_revision(name, entry, lock, endpoint)
    hashes = {}
    for file in entry["files"]:
        res = {k: entry[k] for k in ("hub", "url", "repo_type", "manual") if k in entry}
        res.update(file=file, sha256=(entry.get("sha256") or {}).get(file), **({"revision": commit} if commit else {}))
        fetch(f"{name}/{file}", res, root, lock, endpoint, path=file)
        hashes[file] = res["sha256"] or lock.get(f"{name}/{file}")      # pinned, or recorded at first download
    return root, commit, hashes


def file_hashes(name: str) -> dict:
    """{file: sha256} of a fetched checkpoint, each file verified (pinned, or as the lock recorded it)."""
    return _materialize(name)[2]


def fetch_manifest(name: str, out: str | os.PathLike, endpoint: str | None = None,
                   lock_path: str | os.PathLike | None = None) -> dict:
    """The fetch stage's job for one checkpoint: fetch and verify its files, then write ``out`` (the commit and
    each file's sha256), the input that compute jobs wait for."""
    import json
    from ipbench.store.files import write_atomic
    _, commit, hashes = _materialize(name, endpoint=endpoint, lock_path=lock_path)
    entry = checkpoint(name)
    manifest = {"name": name, "source": entry.get("hub") or entry.get("url"), "revision": commit, "files": hashes}
    write_atomic(out, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


class CLIPPromptEncoder:
    """tokens(prompts) = last hidden states of a CLIP text encoder (SD 1.5: 77 x 768)."""

    def __init__(self, tokenizer, text_encoder):
        self.tokenizer, self.encoder = tokenizer, text_encoder.eval()

    @torch.no_grad()
    def tokens(self, prompts):
        ids = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids
        return self.encoder(ids.to(self.encoder.device)).last_hidden_state


class SDXLPromptEncoder:
    """SDXL's two CLIP encoders: penultimate hidden states concatenated (77 x 2048) and the pooled
    projection of the second (1280), as ``StableDiffusionXLPipeline.encode_prompt``."""

    def __init__(self, tok1, enc1, tok2, enc2):
        self.parts = [(tok1, enc1.eval()), (tok2, enc2.eval())]

    @torch.no_grad()
    def encode(self, prompts):
        hidden, pooled = [], None
        for tok, enc in self.parts:
            ids = tok(list(prompts), padding="max_length", truncation=True, max_length=tok.model_max_length,
                      return_tensors="pt").input_ids
            out = enc(ids.to(enc.device), output_hidden_states=True)
            hidden.append(out.hidden_states[-2])
            pooled = out[0]                     # text_embeds of CLIPTextModelWithProjection
        return torch.cat(hidden, -1), pooled

    def tokens(self, prompts):
        return self.encode(prompts)[0]


class SDXLConditions:
    """Mixin: SDXL's added conditions; ``set_added_conditions`` fixes the pooled embedding and the size / crop
    time ids (LATINO-PRO keeps them at the initial prompt)."""

    def __init__(self, vae, unet, text_encoder, resolution: int | tuple[int, int] = 1024):
        super().__init__(vae, unet, vae.config.scaling_factor, text_encoder)
        self.resolution = resolution
        self.added = None

    def embed(self, prompts):
        self.calls.record("text encoder", lambda _: self.text.encode(prompts), torch.empty(len(prompts)))
        tokens, pooled = self.text.encode(prompts)
        if self.added is None:
            self.set_added_conditions(pooled.float())
        return tokens.float()

    def set_added_conditions(self, pooled: torch.Tensor) -> None:
        h, w = (self.resolution,) * 2 if isinstance(self.resolution, int) else self.resolution
        time_ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=pooled.dtype, device=pooled.device)
        self.added = {"text_embeds": pooled, "time_ids": time_ids.expand(pooled.shape[0], -1)}

    def _eps(self, z_t, t, c):
        added = {k: v.repeat(z_t.shape[0] // v.shape[0], *([1] * (v.ndim - 1))).to(self.unet.dtype)
                 for k, v in self.added.items()}
        return super()._eps(z_t, t, c, added_cond_kwargs=added)


class SDXLConsistencyPrior(SDXLConditions, ConsistencyPrior):
    """SDXL + DMD2 behind the latent protocol (LATINO, LATINO-PRO; LVTINO's image consistency model)."""


class SDXLDiffusionPrior(SDXLConditions, LatentDiffusionPrior):
    """SDXL base behind the latent protocol (VISION-XL's prior)."""


def dtype_of(name: str) -> torch.dtype:
    """The dtype checkpoint ``name`` loads in: its catalogue ``dtype`` (the official code's), float32 if unset."""
    value = checkpoint(name).get("dtype", "float32")
    if value not in ("float32", "float16", "bfloat16"):
        raise ValueError(f"checkpoint {name!r}: dtype {value!r} is not one of float32, float16, bfloat16")
    return getattr(torch, value)


def load_sd15(lcm_lora: bool = False, root: str | os.PathLike | None = None,
              lora_root: str | os.PathLike | None = None, dtype=None):
    """SD 1.5 as a ``LatentDiffusionPrior`` (or, with the LCM-LoRA fused, a ``ConsistencyPrior``), in the
    catalogue's dtype unless ``dtype`` is given."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    dtype = dtype or dtype_of("sd15")
    root = Path(root or materialize("sd15"))
    kw = dict(local_files_only=True, torch_dtype=dtype)
    unet = UNet2DConditionModel.from_pretrained(root, subfolder="unet", **kw)
    vae = AutoencoderKL.from_pretrained(root, subfolder="vae", **kw)
    text = CLIPPromptEncoder(CLIPTokenizer.from_pretrained(root, subfolder="tokenizer", local_files_only=True),
                             CLIPTextModel.from_pretrained(root, subfolder="text_encoder", **kw))
    if not lcm_lora:
        return LatentDiffusionPrior(vae, unet, vae.config.scaling_factor, text)
    from diffusers import StableDiffusionPipeline
    lora_root = Path(lora_root or materialize("lcm_lora_sd15"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text.encoder, tokenizer=text.tokenizer, unet=unet,
                                   scheduler=None, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.load_lora_weights(str(lora_root), weight_name=checkpoint("lcm_lora_sd15")["files"][0])
    pipe.fuse_lora()
    return ConsistencyPrior(vae, pipe.unet, vae.config.scaling_factor, text)


def load_sdxl_dmd2(root=None, dmd2_root=None, vae_root=None, dtype=None, resolution: int | tuple[int, int] = 1024):
    """SDXL base's text encoders and UNet architecture, DMD2's 4-step UNet weights, the fp16-fix VAE, in the
    catalogue's dtype (the official code's fp16) unless ``dtype`` is given. ``resolution``: the size time ids
    (LATINO: 1024; LVTINO's frames: (768, 1280), height first)."""
    dmd2_root = Path(dmd2_root or materialize("dmd2_sdxl_4step_unet"))
    state = torch.load(dmd2_root / checkpoint("dmd2_sdxl_4step_unet")["files"][0], map_location="cpu",
                       weights_only=True)
    return _sdxl(SDXLConsistencyPrior, state, root, vae_root, dtype or dtype_of("sdxl_dmd2"), resolution)


def load_sdxl_base(root=None, unet_root=None, vae_root=None, dtype=None, resolution: int | tuple[int, int] = 1024):
    """SDXL base (its own UNet weights, the fp16 variant) with the fp16-fix VAE: VISION-XL's prior."""
    from safetensors.torch import load_file
    unet_root = Path(unet_root or materialize("sdxl_base_unet_fp16"))
    state = load_file(unet_root / checkpoint("sdxl_base_unet_fp16")["files"][0])
    return _sdxl(SDXLDiffusionPrior, state, root, vae_root, dtype or dtype_of("sdxl_base_768x1280"), resolution)


def _sdxl(cls, unet_state: dict, root, vae_root, dtype, resolution):
    """SDXL base's text encoders and UNet architecture with ``unet_state``, the fp16-fix VAE, in ``dtype``."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
    root = Path(root or materialize("sdxl_base"))
    vae_root = Path(vae_root or materialize("sdxl_vae_fp16_fix"))
    kw = dict(local_files_only=True, torch_dtype=dtype)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root, subfolder="unet",
                                                                             local_files_only=True))
    unet.load_state_dict(unet_state)
    unet = unet.to(dtype)
    vae = AutoencoderKL.from_pretrained(vae_root, **kw)
    text = SDXLPromptEncoder(
        CLIPTokenizer.from_pretrained(root, subfolder="tokenizer", local_files_only=True),
        CLIPTextModel.from_pretrained(root, subfolder="text_encoder", **kw),
        CLIPTokenizer.from_pretrained(root, subfolder="tokenizer_2", local_files_only=True),
        CLIPTextModelWithProjection.from_pretrained(root, subfolder="text_encoder_2", **kw))
    return cls(vae, unet, text, resolution)


def load_causvid(root=None, wan_root=None, dtype=None, max_length: int = 512):
    """LVTINO's video consistency model: Wan2.1-T2V-1.3B's architecture, VAE and UMT5 text encoder (its diffusers
    repository) with CausVid's bidirectional DMD generator weights (a torch pickle: tensors only,
    ``weights_only=True``), in the catalogue's dtype (the official code's bf16) unless ``dtype`` is given."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    from .wan import WanVideoPrior, wan_transformer_state
    dtype = dtype or dtype_of("causvid_bidirectional")
    root = Path(root or materialize("causvid_bidirectional"))
    wan_root = Path(wan_root or materialize("wan21_t2v_1p3b"))
    transformer = WanTransformer3DModel.from_config(WanTransformer3DModel.load_config(
        wan_root, subfolder="transformer", local_files_only=True))
    state = torch.load(root / checkpoint("causvid_bidirectional")["files"][0], map_location="cpu", weights_only=True,
                       mmap=True)
    transformer.load_state_dict(wan_transformer_state(state["generator"]))
    kw = dict(local_files_only=True, torch_dtype=dtype)
    vae = AutoencoderKLWan.from_pretrained(wan_root, subfolder="vae", **kw)
    tokenizer = AutoTokenizer.from_pretrained(wan_root, subfolder="tokenizer", local_files_only=True)
    text = UMT5EncoderModel.from_pretrained(wan_root, subfolder="text_encoder", **kw)
    return WanVideoPrior(vae, transformer.to(dtype), tokenizer, text, max_length)


def deepinv_models():
    """deepinv's models, an extra of the paper profile (``pip install -e '.[paper]'``)."""
    try:
        import deepinv.models
    except ImportError as err:
        raise ImportError("the paper profile's ADM and RAM come from deepinv, which is not installed; "
                          "install the paper extra: pip install -e '.[paper]'") from err
    return deepinv.models


def load_adm_imagenet256(root=None):
    """ADM ImageNet-256 unconditional in ``priors.guided_unet`` (guided-diffusion's ``UNetModel``: its flags and
    parameter names; 256 channels, 2 res-blocks, attention at 32/16/8, learned variance; a catalogue
    ``architecture`` replaces some of these flags: tiny replicas)."""
    from .guided_unet import ADM_256_UNCOND, GuidedUNet
    from .pixel_ddpm import PixelDiffusionPrior
    root = Path(root or materialize("adm_imagenet256_uncond"))
    # guided-diffusion's sampling flags for this model say --use_fp16 True: its torso in fp16, input and output fp32
    entry = checkpoint("adm_imagenet256_uncond")
    net = GuidedUNet(**{**ADM_256_UNCOND, **entry.get("architecture", {})},
                     use_fp16=dtype_of("adm_imagenet256_uncond") == torch.float16)
    state = torch.load(root / entry["files"][0], map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return PixelDiffusionPrior(net, "linear", adm=True)


class I2SBNetwork(torch.nn.Module):
    """I2SB's ``Image256Net``: the U-Net at time noise_levels[n] = 1000 linspace(t0 = 1e-4, 1, 1000)[n] for the
    bridge's step n (fractional timesteps)."""

    def __init__(self, unet: torch.nn.Module, interval: int = 1000, t0: float = 1e-4):
        super().__init__()
        self.diffusion_model = unet
        self.register_buffer("noise_levels", torch.linspace(t0, 1.0, interval) * interval, persistent=False)

    def forward(self, x, n):
        from types import SimpleNamespace
        return SimpleNamespace(sample=self.diffusion_model(x, self.noise_levels[n]))


def i2sb_ema_state(ckpt: dict, unet: torch.nn.Module) -> dict:
    """The EMA weights of an I2SB ``latest.pt`` (what its sampler uses) as the U-Net's state dict: torch_ema keeps
    them as ``shadow_params``, a list in the order of ``Image256Net.parameters()``, whose only module is the
    U-Net (``diffusion_model.``), so the names follow ``unet.named_parameters()``."""
    shadow = ckpt["ema"]["shadow_params"]
    names = [name for name, _ in unet.named_parameters()]
    shapes = [tuple(p.shape) for p in shadow], [tuple(p.shape) for p in unet.parameters()]
    if shapes[0] != shapes[1]:
        raise ValueError(f"the I2SB checkpoint's EMA ({len(shadow)} tensors) does not fit the U-Net's "
                         f"{len(names)} parameters: wrong architecture or file")
    state = dict(zip(names, shadow))
    net_keys = {k.removeprefix("diffusion_model.") for k in ckpt["net"]}
    if net_keys != set(state):
        raise ValueError("the I2SB checkpoint's 'net' keys do not match the U-Net's parameters")
    return state


def load_i2sb(name: str, root=None, architecture: dict | None = None):
    """An NVlabs I2SB ImageNet-256 bridge (``latest.pt``, loaded as tensors only; its EMA weights) behind the
    bridge protocol, with the schedule its task was trained with (catalogue ``beta_max``, ``ot_ode``).
    ``architecture``: flags replacing some of ``I2SB_256``'s (by default the catalogue entry's ``architecture``:
    tiny replicas)."""
    from .bridge import BridgePrior
    from .guided_unet import I2SB_256, GuidedUNet
    entry = checkpoint(name)
    root = Path(root or materialize(name))
    ckpt = torch.load(root / entry["files"][0], map_location="cpu", weights_only=True)
    # the official sampler's --use-fp16 (catalogue dtype): the torso's convolutions in float16
    flags = {**I2SB_256, **(entry.get("architecture", {}) if architecture is None else architecture)}
    unet = GuidedUNet(**{**flags, "use_fp16": dtype_of(name) == torch.float16})
    unet.load_state_dict(i2sb_ema_state(ckpt, unet), strict=True)
    return BridgePrior(I2SBNetwork(unet), beta_max=float(entry["beta_max"]), ot_ode=bool(entry["ot_ode"]))


def load_ram(name: str = "ram_deepinv", root=None, counter=None):
    """deepinv's RAM with the published weights, as UD2M+RAM's warm start (``priors.ram.PhysicsRAMWarmStart``)."""
    from .ram import ram_from_state
    root = Path(root or materialize(name))
    state = torch.load(root / checkpoint(name)["files"][0], map_location="cpu", weights_only=True)
    return ram_from_state(state, name, counter)


def load_vidue(name: str = "vidue_gopro", root=None, architecture: dict | None = None):
    """VIDUE's released ``model_best_*.pt`` (a plain state dict, loaded as tensors only) into ``priors.vidue.VIDUE``
    (the released configuration, or the catalogue entry's ``architecture``: tiny replicas), strictly."""
    from .vidue import VIDUE
    entry = checkpoint(name)
    root = Path(root or materialize(name))
    state = torch.load(root / entry["files"][0], map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    net = VIDUE(**(entry.get("architecture", {}) if architecture is None else architecture))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{name}: {root / entry['files'][0]} is not a VIDUE state dict of this architecture: "
                         f"{str(err)[:300]}") from None
    return net.eval().requires_grad_(False)


@lru_cache(maxsize=2)
def vidue_network(name: str):
    """``load_vidue(name)`` once per process (the solvers of a job call it per mini-batch)."""
    return load_vidue(name)


def load_clip(root=None, dtype=torch.float32):
    """CLIP ViT-L/14 (model, processor) for TReg's adaptive negation."""
    from transformers import CLIPModel, CLIPProcessor
    root = Path(root or materialize("clip_vit_l14"))
    return (CLIPModel.from_pretrained(root, local_files_only=True, torch_dtype=dtype).eval(),
            CLIPProcessor.from_pretrained(root, local_files_only=True))


class CLIPImageFeatures(torch.nn.Module):
    """[0, 1] images -> unit-norm CLIP image embeddings (TReg's ``FrozenClipImageEmbedder``): bicubic
    resize to the tower's input size, CLIP's mean / std, the projected image features."""

    def __init__(self, model, processor):
        super().__init__()
        self.model = model
        ip = processor.image_processor
        crop = ip.crop_size          # a dict, or a SizeDict in recent transformers
        self.size = int(crop["height"] if isinstance(crop, dict) else getattr(crop, "height", crop))
        self.register_buffer("mean", torch.tensor(ip.image_mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(ip.image_std).view(1, -1, 1, 1))

    def forward(self, x):
        x = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=(self.size, self.size),
                                            mode="bicubic", align_corners=False)
        f = self.model.get_image_features(pixel_values=(x - self.mean) / self.std)
        f = f if isinstance(f, torch.Tensor) else f.pooler_output
        return torch.nn.functional.normalize(f, dim=-1)
