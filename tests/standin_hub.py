"""A stand-in for the hub and the download sites of the paper profile: tiny random-weight replicas of every
published network, in the files and layouts of the real repositories, and tiny datasets in the real archives'
formats, served on loopback. The paper profile's loaders, fetch stage and DAG run on them unchanged; only the
catalogue's URLs (and, for networks whose shape is fixed in code, their ``architecture``) are laid over it
(``IPBENCH_CHECKPOINTS``), as ``HF_ENDPOINT`` points the hub client elsewhere."""
import contextlib
import gzip
import http.server
import io
import json
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path

import ipbench.suite.config as sc
import numpy as np
import torch

COMMIT = "0123456789abcdef0123456789abcdef01234567"     # the stand-in hub's one commit of every repository


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of bytes used by byte-level BPE vocabularies (GPT-2, CLIP)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(extra))]


def _clip_tokenizer(path: Path):
    """A character-level CLIP tokenizer (vocab.json, merges.txt, configs), as the hub repos lay it out."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _byte_chars():
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    (path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 16}))
    (path / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
         "unk_token": "<|endoftext|>"}))
    return len(vocab)


def _clip_text(path: Path, vocab_size: int, with_projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, projection_dim=32)
    torch.manual_seed(0)
    (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg).save_pretrained(path)


def _unet(seed: int = 0, **extra):
    from diffusers import UNet2DConditionModel
    torch.manual_seed(seed)
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2,
                                norm_num_groups=4, **extra)


def _vae():
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         norm_num_groups=4, layers_per_block=1)


def _wan_transformer(seed: int = 0):
    from diffusers import WanTransformer3DModel
    torch.manual_seed(seed)
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                 out_channels=4, text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2,
                                 rope_max_seq_len=1024)    # the real one: 81 frames are 21 latent ones (41 here)


def _wan_vae():
    from diffusers import AutoencoderKLWan
    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=8, z_dim=4, dim_mult=[1, 2, 2], num_res_blocks=1, temperal_downsample=[False, True],
                            latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[2.0, 1.5, 1.0, 0.5],
                            scale_factor_temporal=2, scale_factor_spatial=4)


def _umt5(encoder: Path, tokenizer: Path):
    """A tiny UMT5 encoder saved in five shards with their index, and a word-level fast tokenizer (the real
    repository's tokenizer.json; its SentencePiece file is served as a stand-in the fast tokenizer never reads)."""
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel
    torch.manual_seed(0)
    model = UMT5EncoderModel(UMT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
                                        relative_attention_num_buckets=8))
    encoder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(encoder)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    keys, weight_map = sorted(state), {}
    for i in range(5):
        name = f"model-{i + 1:05d}-of-00005.safetensors"
        part = keys[i::5]
        save_file({k: state[k] for k in part}, encoder / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    (encoder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in state.values())}, "weight_map": weight_map}))
    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", "a", "high", "resolution", "video", "of", "digit"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                            model_max_length=8).save_pretrained(tokenizer)
    (tokenizer / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<pad>", "eos_token": "</s>",
                                                                   "unk_token": "<unk>"}))
    (tokenizer / "spiece.model").write_bytes(b"stand-in")


# diffusers' WanTransformer3DModel names -> the original Wan names (Wan2.1's modules/model.py), written out here
# independently of the converter the loader uses
WAN_ORIGINAL = [("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
                ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
                ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
                ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
                ("condition_embedder.time_proj", "time_projection.1"), (".attn1.", ".self_attn."),
                (".attn2.", ".cross_attn."), (".to_q.", ".q."), (".to_k.", ".k."), (".to_v.", ".v."),
                (".to_out.0.", ".o."), (".norm2.", ".norm3."), ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2")]


def _original_wan_name(key: str) -> str:
    for new, old in WAN_ORIGINAL:
        key = key.replace(new, old)
    if key == "scale_shift_table":
        return "head.modulation"
    if key.startswith("proj_out."):
        return "head.head." + key[len("proj_out."):]
    return key.replace(".scale_shift_table", ".modulation")




def build_hub(root: Path) -> None:
    """Tiny SD 1.5, LCM-LoRA, SDXL + DMD2 + VAE, CLIP, Wan2.1 + CausVid repositories and a random-weight RAM,
    laid out as the hub serves them (``{repo}/resolve/{commit}/{file}``, and the API's branch -> commit)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    def repo(name):
        """The repository's files at COMMIT, and the hub API's answer that its branch points there."""
        hub = sc.checkpoint(name)["hub"]
        api = root / "api" / "models" / hub / "revision" / "main"
        api.parent.mkdir(parents=True, exist_ok=True)
        api.write_text(json.dumps({"id": hub, "sha": COMMIT}))
        return root / hub / "resolve" / COMMIT

    # SD 1.5
    sd = repo("sd15")
    V = _clip_tokenizer(sd / "tokenizer")
    _clip_text(sd / "text_encoder", V)
    _unet(cross_attention_dim=32).save_pretrained(sd / "unet")
    _vae().save_pretrained(sd / "vae")
    # LCM-LoRA on the same UNet
    unet = _unet(cross_attention_dim=32)
    unet.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                init_lora_weights=False))
    StableDiffusionPipeline.save_lora_weights(repo("lcm_lora_sd15"),
                                              unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)))
    # SDXL base (text encoders, UNet config), DMD2 UNet weights, fp16-fix VAE
    xl = repo("sdxl_base")
    for t in ("tokenizer", "tokenizer_2"):
        _clip_tokenizer(xl / t)
    _clip_text(xl / "text_encoder", V)
    _clip_text(xl / "text_encoder_2", V, with_projection=True)
    xl_unet = _unet(cross_attention_dim=64, addition_embed_type="text_time", addition_time_embed_dim=4,
                    projection_class_embeddings_input_dim=4 * 6 + 32)
    xl_unet.save_pretrained(xl / "unet")
    from safetensors.torch import save_file
    save_file({k: v.half().contiguous() for k, v in _unet(cross_attention_dim=64, addition_embed_type="text_time",
                                                           addition_time_embed_dim=4,
                                                           projection_class_embeddings_input_dim=4 * 6 + 32,
                                                           seed=2).state_dict().items()},
              repo("sdxl_base_unet_fp16") / "unet" / "diffusion_pytorch_model.fp16.safetensors")
    (repo("dmd2_sdxl_4step_unet")).mkdir(parents=True)
    torch.save({k: v.half() for k, v in xl_unet.state_dict().items()},
               repo("dmd2_sdxl_4step_unet") / "dmd2_sdxl_4step_unet_fp16.bin")
    _vae().save_pretrained(repo("sdxl_vae_fp16_fix"))
    # CLIP ViT-L/14
    clip = repo("clip_vit_l14")
    _clip_tokenizer(clip)
    cfg = CLIPConfig(text_config=dict(vocab_size=V, hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                      num_attention_heads=4, max_position_embeddings=16),
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                        num_attention_heads=4, image_size=32, patch_size=8),
                     projection_dim=32)      # ViT-L/14's projection is SD 1.5's text width (768), as TReg needs
    CLIPModel(cfg).save_pretrained(clip)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(clip)
    # deepinv's RAM (its size is fixed: 35.6 M parameters, stored in fp16 here)
    from deepinv.models import RAM
    torch.manual_seed(0)
    repo("ram_deepinv").mkdir(parents=True)
    torch.save({k: v.half() for k, v in RAM(pretrained=False, device="cpu").state_dict().items()},
               repo("ram_deepinv") / "ram.pth.tar")

    # Wan2.1-T2V-1.3B (diffusers layout: transformer config, video VAE, a UMT5 encoder in five shards, a
    # tokenizer) and CausVid's generator in the original Wan names under 'model.' (a torch pickle)
    wan = repo("wan21_t2v_1p3b")
    _wan_transformer().save_config(wan / "transformer")
    _wan_vae().save_pretrained(wan / "vae")
    _umt5(wan / "text_encoder", wan / "tokenizer")
    causvid = repo("causvid_bidirectional") / "bidirectional_checkpoint2"
    causvid.mkdir(parents=True)
    torch.save({"generator": {"model." + _original_wan_name(k): v for k, v in
                              _wan_transformer(seed=1).state_dict().items()}}, causvid / "model.pt")



#: tiny guided-diffusion U-Nets: ADM (learned variance, 6 output channels) and the I2SB bridges (3)
TINY_GUIDED = dict(image_size=32, model_channels=32, num_res_blocks=1, attention_resolutions=(8,), channel_mult=(1, 2),
                   num_head_channels=16)
TINY_ADM = {**TINY_GUIDED, "out_channels": 6}
TINY_I2SB = {**TINY_GUIDED, "out_channels": 3}
TINY_PIPS = {"latent": 16, "widths": [8, 8, 16, 16], "base_filters": 8}
TINY_VIDUE = {"feats": 16, "extractor_feats": 4, "offset_nf": 4, "refine_nf": 4, "blocks": [1, 1, 1, 1]}
BRIDGES = ["i2sb_imagenet256_blur_gauss", "i2sb_imagenet256_blur_uni", "i2sb_imagenet256_sr4x_pool",
           "i2sb_imagenet256_jpeg10"]


def i2sb_latest(seed: int = 0) -> dict:
    """An NVlabs I2SB ``latest.pt`` replica: the training net, torch_ema's nameless ``shadow_params``, the
    optimizer's state."""
    from ipbench.priors.guided_unet import GuidedUNet
    torch.manual_seed(seed)
    net, ema = GuidedUNet(**TINY_I2SB), GuidedUNet(**TINY_I2SB)
    for p in ema.parameters():
        p.data.normal_(0, 0.02)
    return {"net": {f"diffusion_model.{k}": v for k, v in net.state_dict().items()},
            "ema": {"decay": 0.9999, "num_updates": 10, "shadow_params": [p.detach().clone() for p in ema.parameters()],
                    "collected_params": None},
            "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0]}]}, "sched": None}


class _InceptionLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 13, stride=13)
        self.head = torch.nn.Linear(8 * 16, 2048)

    def forward(self, x):
        return self.head(torch.nn.functional.adaptive_avg_pool2d(self.conv(x).relu(), 4).flatten(1))


class _Inception(torch.nn.Module):
    """The interface of clean-fid's TorchScript Inception-v3 (``layers`` on [-1, 1] 299 x 299 images, 2048-d)."""

    def __init__(self):
        super().__init__()
        self.layers = _InceptionLayers()

    def forward(self, x, return_features: bool = False):
        return self.layers((x - 128) / 128)


def build_downloads(root: Path, endpoint: str) -> dict:
    """The files the catalogue downloads from plain URLs (ADM, clean-fid's Inception, torchvision's VGG-16), as
    tiny replicas under ``root/url/<name>/``; returns the catalogue overlay that points there (and gives ADM and
    the bridges their tiny architecture)."""
    import torchvision
    from ipbench.priors.guided_unet import GuidedUNet

    overlay = {}

    def place(name) -> Path:
        """The file's place on the stand-in site; the overlay points the entry's ``url`` there."""
        path = root / "url" / name / sc.checkpoint(name)["files"][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        overlay[name] = {"url": f"{endpoint}/url/{name}/{path.name}"}
        return path

    torch.manual_seed(0)
    net = GuidedUNet(**TINY_ADM)
    for p in net.parameters():
        p.data.normal_(0, 0.02)
    torch.save(net.state_dict(), place("adm_imagenet256_uncond"))
    torch.jit.script(_Inception()).save(str(place("inception_clean_fid")))
    # LPIPS reads only the convolutional part (``features.*``) of torchvision's file: the classifier is left out
    torch.save({k: v for k, v in torchvision.models.vgg16().state_dict().items() if k.startswith("features.")},
               place("vgg16_torchvision"))
    # VIDUE (LVTINO's Problem C warm start): a small replica of the released architecture; its pinned sha256 is
    # the real file's, so the overlay pins the replica's
    from ipbench.priors.vidue import VIDUE
    from ipbench.store.files import sha256_of
    torch.manual_seed(0)
    path = place("vidue_gopro")
    torch.save(VIDUE(**TINY_VIDUE).state_dict(), path)
    overlay["vidue_gopro"].update(architecture=TINY_VIDUE, sha256={path.name: sha256_of(path)})
    # PIPs++ (FVMD's tracker), a small replica of the released architecture in the fvmd package's file layout
    from ipbench.metrics.pips import Pips
    torch.manual_seed(0)
    pips = Pips(**TINY_PIPS)
    with torch.no_grad():
        pips.delta_block.dense.weight.mul_(0.02)        # small updates, as a trained tracker makes
    torch.save({"model_state_dict": pips.state_dict()}, place("pips2_fvmd"))
    overlay["pips2_fvmd"]["architecture"] = TINY_PIPS
    overlay["adm_imagenet256_uncond"]["architecture"] = TINY_ADM
    overlay.update({name: {"architecture": TINY_I2SB} for name in BRIDGES})
    return overlay


def place_bridges(resources: Path) -> None:
    """The bridges are placed by hand (a Google Drive folder): here, into the run's resources/checkpoints/."""
    for i, name in enumerate(BRIDGES):
        path = resources / "checkpoints" / name / sc.checkpoint(name)["files"][0]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(i2sb_latest(seed=i), path)


def _image_bytes(rng: np.random.Generator, size: int, fmt: str) -> bytes:
    """A smooth random colour image (low-frequency noise), encoded as ``fmt``."""
    from PIL import Image
    coarse = rng.random((4, 4, 3))
    img = Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def build_datasets(root: Path, resources: Path, endpoint: str, n: int = 6) -> dict:
    """Tiny archives in the real formats: AFHQ's and Adobe240's zips and MNIST's idx (downloaded from ``root/url/``), and
    ImageNet's validation tar (placed by hand into ``resources/datasets/``). Returns the config's ``datasets``
    overlay (the stand-in URLs; no pinned sha256: the first fetch locks it)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    (root / "url" / "afhq").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "url" / "afhq" / "afhq.zip", "w") as z:
        for i in range(n):
            z.writestr(f"afhq/val/{('cat', 'dog')[i % 2]}/flickr_{i:06d}.jpg", _image_bytes(rng, 96, "JPEG"))
    digits = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
    header = np.array([2051, n, 28, 28], dtype=">i4").tobytes()
    (root / "url" / "mnist").mkdir(parents=True, exist_ok=True)
    (root / "url" / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + digits.tobytes()))
    imagenet = resources / "datasets" / "imagenet256_val" / "ILSVRC2012_img_val.tar"
    imagenet.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(imagenet, "w") as tar:
        for i in range(n):
            blob = _image_bytes(rng, 80, "JPEG")
            info = tarfile.TarInfo(f"ILSVRC2012_val_{i + 1:08d}.JPEG")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    # Adobe240's test videos (VIDUE's layout, test/<video>/<frame>.png): two of 81 frames, a bright blob moving
    # across a smooth background, so that the frames have corners to track
    rows, cols = np.mgrid[0:40, 0:60]
    (root / "url" / "adobe240").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "url" / "adobe240" / "adobe240.zip", "w") as z:
        for video in range(2):
            background = rng.random(3) * 0.5
            for f in range(81):
                r, c = 12 + 8 * np.sin(f / 9 + video), 10 + 0.5 * f
                blob = np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 18.0)
                frame = np.clip(background + blob[..., None] * np.array([0.9, 0.6, 0.3]), 0, 1)
                buf = io.BytesIO()
                Image.fromarray((frame * 255).astype(np.uint8)).save(buf, format="PNG")
                z.writestr(f"adobe240/test/video{video}/{f:05d}.png", buf.getvalue())
    return {"afhq512_val": {"source": {"url": f"{endpoint}/url/afhq/afhq.zip"}},
            "adobe240_test": {"source": {"url": f"{endpoint}/url/adobe240/adobe240.zip"}},
            "mnist_test": {"source": {"url": f"{endpoint}/url/mnist/t10k-images-idx3-ubyte.gz"}}}


@contextlib.contextmanager
def serve(root: Path):
    """``root`` over HTTP on loopback while the block runs; yields the endpoint."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
