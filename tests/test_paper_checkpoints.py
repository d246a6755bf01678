"""The paper profile's checkpoint loaders, on tiny random-weight models of the same classes saved
into a folder laid out like the hub, served on loopback, fetched, verified and loaded offline."""
import json
from pathlib import Path

import ipbench.suite.config as sc
import pytest
import standin_hub
import torch
from ipbench.priors import paper
from standin_hub import COMMIT, TINY_GUIDED, _wan_transformer


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The stand-in hub (tests/standin_hub.py) on loopback."""
    root = tmp_path_factory.mktemp("hub")
    standin_hub.build_hub(root)
    with standin_hub.serve(root) as endpoint:
        yield endpoint


@pytest.fixture
def fetched(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lock = tmp_path / "checksums.lock"
    return lambda name: paper.materialize(name, dest=tmp_path / "ckpt", endpoint=hub, lock_path=lock), lock


def _one_step(prior, consistency: bool):
    c = prior.embed(["a photo of a cat", "a photo of a dog"])
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    out = prior.x0(z, 999, c) if consistency else prior.eps(z, 999, c)
    assert out.shape == z.shape and torch.isfinite(out).all() and prior.nfe == 2
    x = prior.decode(z)
    assert x.shape == (2, 3, 16, 16) and prior.encode(x.clamp(0, 1)).shape == z.shape


def test_sd15_and_lcm_lora(fetched):
    fetch, lock = fetched
    prior = paper.load_sd15(root=fetch("sd15"))
    _one_step(prior, consistency=False)
    recorded = json.loads(lock.read_text())
    assert "sd15/unet/diffusion_pytorch_model.safetensors" in recorded       # first use records the hash
    lcm = paper.load_sd15(lcm_lora=True, root=fetch("sd15"), lora_root=fetch("lcm_lora_sd15"))
    _one_step(lcm, consistency=True)
    z = torch.randn(1, 4, 8, 8)
    c = prior.embed(["x"])
    assert not torch.allclose(lcm.eps(z, 500, c), prior.eps(z, 500, c))     # the LoRA changed the UNet


def test_sdxl_dmd2(fetched):
    fetch, _ = fetched
    prior = paper.load_sdxl_dmd2(root=fetch("sdxl_base"), dmd2_root=fetch("dmd2_sdxl_4step_unet"),
                                 vae_root=fetch("sdxl_vae_fp16_fix"), resolution=16)
    _one_step(prior, consistency=True)
    assert prior.added["text_embeds"].shape == (2, 32) and prior.added["time_ids"].shape == (2, 6)
    frames = paper.load_sdxl_dmd2(root=fetch("sdxl_base"), dmd2_root=fetch("dmd2_sdxl_4step_unet"),
                                  vae_root=fetch("sdxl_vae_fp16_fix"), resolution=(12, 20))
    frames.embed(["a high resolution photo"])
    assert frames.added["time_ids"].tolist() == [[12, 20, 0, 0, 12, 20]]          # height first, as LVTINO's


def test_sdxl_base_for_vision_xl(fetched):
    fetch, _ = fetched
    prior = paper.load_sdxl_base(root=fetch("sdxl_base"), unet_root=fetch("sdxl_base_unet_fp16"),
                                 vae_root=fetch("sdxl_vae_fp16_fix"), resolution=16)
    _one_step(prior, consistency=False)
    dmd2 = paper.load_sdxl_dmd2(root=fetch("sdxl_base"), dmd2_root=fetch("dmd2_sdxl_4step_unet"),
                                vae_root=fetch("sdxl_vae_fp16_fix"), resolution=16)
    assert prior.unet.dtype == torch.float16 and not torch.equal(prior.unet.conv_in.weight, dmd2.unet.conv_in.weight)


def test_causvid_on_wan_loads_the_generator_and_speaks_the_vp_protocol(fetched, monkeypatch):
    """CausVid's generator (original Wan names) lands in diffusers' Wan transformer exactly; the prior's x0 turns
    the variance-preserving z_t into Wan's flow point and back (checked with an exact velocity); LVTINO's flow
    timesteps map to the points of Wan's shifted grid nearest them (the sigmas the official scheduler reads)."""
    from ipbench.methods.lvtino import FLOW_STEPS, vp_timestep_of_flow
    fetch, _ = fetched
    prior = paper.load_causvid(root=fetch("causvid_bidirectional"), wan_root=fetch("wan21_t2v_1p3b"),
                               dtype=torch.float32, max_length=8)
    expected = _wan_transformer(seed=1).state_dict()
    assert [k for k, v in prior.transformer.state_dict().items() if not torch.equal(v, expected[k])] == []
    clip = torch.rand(2, 9, 3, 16, 16)
    z = prior.encode(clip)
    assert z.shape == (2, 5, 4, 4, 4) == (2, *prior.latent_shape(clip.shape[1:]))
    assert prior.decode(z).shape == clip.shape
    c = prior.embed(["a high resolution video", "a video of a digit"])
    assert c.shape == (2, 8, 16) and (c[0, 4:] == 0).all() and (c[0, :4] != 0).any()    # zero past the prompt
    out = prior.x0(torch.randn_like(z), 757, c)
    assert out.shape == z.shape and torch.isfinite(out).all() and prior.nfe == 2
    z0, eps, t = torch.randn_like(z), torch.randn_like(z), 375
    a = prior.abar[t]
    z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
    velocity = (eps - z0).transpose(1, 2)
    monkeypatch.setattr(prior, "transformer", type("Exact", (), {
        "dtype": torch.float32, "__call__": lambda self, z, ts, encoder_hidden_states: type("O", (), {"sample": velocity})})())
    assert torch.allclose(prior.x0(z_t, t, c), z0, atol=1e-5)
    # Wan's sigmas with shift 8 on 1,000 points; a flow timestep reads the sigma of the grid point nearest it
    u = torch.linspace(1, 0, 1001, dtype=torch.float64)[:-1]
    grid = 1000 * 8 * u / (1 + 7 * u)
    nearest = [int(grid[(grid - t).abs().argmin()].round()) for t in FLOW_STEPS["AB"]]
    assert nearest == [757, 522, 376, 255, 128]
    assert [vp_timestep_of_flow(t, abar=prior.abar) for t in FLOW_STEPS["AB"]] == nearest


def test_clip(fetched):
    fetch, _ = fetched
    model, processor = paper.load_clip(root=fetch("clip_vit_l14"))
    inputs = processor(text=["a cat"], images=[torch.rand(3, 32, 32)], return_tensors="pt", padding=True,
                       do_rescale=False)
    assert model(**inputs).logits_per_image.shape == (1, 1)
    features = paper.CLIPImageFeatures(model, processor)       # TReg's image tower, on [0, 1] grey images
    f = features(torch.rand(2, 1, 20, 20))
    assert f.shape == (2, 32) and torch.allclose(f.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_tampered_checkpoint_file_is_refused(fetched):
    from ipbench.store.files import ChecksumError
    fetch, _ = fetched
    root = fetch("sdxl_vae_fp16_fix")
    (root / "config.json").write_text("{}")
    with pytest.raises(ChecksumError, match="config.json"):
        fetch("sdxl_vae_fp16_fix")


def test_guided_unet_is_deepinvs_diffunet():
    """The suite's guided-diffusion U-Net against an independent port of the official ``UNetModel`` (deepinv's
    ``DiffUNet``, small configuration): the same parameter names in the same order, and the same output for the
    same weights (random, none zero)."""
    from deepinv.models import DiffUNet
    from ipbench.priors.guided_unet import GuidedUNet
    ref = DiffUNet(large_model=False, pretrained=None).eval()
    g = torch.Generator().manual_seed(0)
    for p in ref.parameters():
        p.data.normal_(0, 0.02, generator=g)
    ours = GuidedUNet(model_channels=128, num_res_blocks=1, attention_resolutions=(16,)).eval()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("sqrt_")}, strict=True)
    x, t = torch.randn(2, 3, 64, 64, generator=g), torch.tensor([10.0, 500.5])
    with torch.no_grad():
        assert torch.allclose(ours(x, t), ref(x, t, type_t="timestep"), atol=1e-6)


def test_adm_adapter_takes_the_epsilon_channels():
    """On guided-diffusion's ADM (learned variance: 6 channels) the prior keeps the 3 epsilon channels."""
    from ipbench.priors.guided_unet import GuidedUNet
    from ipbench.priors.pixel_ddpm import PixelDiffusionPrior
    torch.manual_seed(0)
    net = GuidedUNet(**TINY_GUIDED, out_channels=6)
    prior = PixelDiffusionPrior(net, "linear", adm=True)
    x = torch.randn(1, 3, 32, 32)
    eps = prior.eps(x, 500)
    with torch.no_grad():
        raw = net(x, torch.tensor([500]), type_t="timestep")
    assert raw.shape[1] == 6 and torch.equal(eps, raw[:, :3]) and prior.nfe == 1


def test_i2sb_bridge_is_placed_by_hand_verified_and_loads_its_ema_weights(tmp_path, monkeypatch):
    """An NVlabs I2SB checkpoint replica (``latest.pt``: the training net, torch_ema's nameless ``shadow_params``,
    optimizer state) of the same U-Net class: offline and absent, the error says how to get it; placed by hand,
    its sha256 is locked at first use and a changed file is refused; the bridge runs the EMA weights at I2SB's
    fractional noise levels, with the task's schedule; CDDB samples on it."""
    from ipbench.baselines import cddb
    from ipbench.datasets.fetch import Lock
    from ipbench.priors import paper
    from ipbench.priors.guided_unet import GuidedUNet
    from ipbench.store.files import ChecksumError
    name = "i2sb_imagenet256_blur_gauss"
    ckpt = standin_hub.i2sb_latest()
    net, ema = GuidedUNet(**TINY_GUIDED, out_channels=3), GuidedUNet(**TINY_GUIDED, out_channels=3)
    net.load_state_dict({k.removeprefix("diffusion_model."): v for k, v in ckpt["net"].items()})
    for p, shadow in zip(ema.parameters(), ckpt["ema"]["shadow_params"]):    # torch_ema's order: the parameters'
        p.data.copy_(shadow)
    lock = tmp_path / "checksums.lock"
    monkeypatch.setenv("IPBENCH_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="runs offline"):
        paper.materialize(name, tmp_path, lock_path=lock)
    monkeypatch.delenv("IPBENCH_OFFLINE")
    with pytest.raises(FileNotFoundError, match="gdown --folder"):
        paper.materialize(name, tmp_path, lock_path=lock)
    (tmp_path / name).mkdir()
    torch.save(ckpt, tmp_path / name / "latest.pt")
    root = paper.materialize(name, tmp_path, lock_path=lock)
    assert Lock(lock).get(f"{name}/latest.pt")
    tiny_i2sb = {**TINY_GUIDED, "out_channels": 3}                   # I2SB: no learned variance
    prior = paper.load_i2sb(name, root, architecture=tiny_i2sb)
    assert prior.beta_max == 1.0 and prior.ot_ode                       # blur-gauss: --beta-max 1.0 --ot-ode
    x = torch.randn(2, 3, 32, 32)
    levels = torch.linspace(1e-4, 1, 1000) * 1000
    with torch.no_grad():
        ema_fp16 = GuidedUNet(**TINY_GUIDED, out_channels=3, use_fp16=True)
        ema_fp16.load_state_dict(ema.state_dict())
        assert torch.equal(prior.eps(x, 250), ema_fp16(x, levels[[250, 250]]))
        assert not torch.allclose(prior.eps(x, 250), net(x, levels[[250, 250]]), atol=1e-3)
    y = torch.rand(2, 3, 32, 32)
    from ipbench import physics
    op = physics.build_operator({"name": "gaussian_blur", "sigma": 1.0}, (3, 32, 32), 0.01)
    out = cddb.solve(op.A(y), op, prior, generator=[torch.Generator().manual_seed(i) for i in range(2)], nfe=4)
    assert out.shape == y.shape and torch.isfinite(out).all() and prior.nfe == 2 * 2 + 2 * 4      # the two checks above, then 4 steps
    with pytest.raises(ValueError, match="does not fit"):
        paper.load_i2sb(name, root, architecture={**tiny_i2sb, "num_res_blocks": 2})
    with pytest.raises(ValueError, match="does not fit"):
        paper.load_i2sb(name, root, architecture={**tiny_i2sb, "model_channels": 64})
    torch.save({**ckpt, "sched": {"step": 1}}, tmp_path / name / "latest.pt")
    with pytest.raises(ChecksumError, match="latest.pt"):
        paper.materialize(name, tmp_path, lock_path=lock)


@pytest.mark.slow            # a dense matrix through RAM (about 10 s)
def test_deepinv_ram_is_ud2m_warm_start_on_the_whitened_stack(fetched, monkeypatch, tmp_path):
    """deepinv's RAM, fetched and loaded as UD2M+RAM's warm start: its call equals RAM run on a stack built
    independently (deepinv's own stacked physics over the dense matrix of A), UD2M counts one RAM call per
    step, and an adapter's fine-tuned copy (``ram.*`` tensors) loads back into the same architecture."""
    import deepinv as dinv
    from conftest import dense
    from deepinv.utils import TensorList
    from ipbench import physics
    from ipbench.methods import ud2m
    from ipbench.priors.ram import PhysicsRAMWarmStart, load_ram
    from ipbench.store.catalog import resolve
    from ipbench.store.files import save_tensors
    from test_ud2m import tiny_prior
    fetch, _ = fetched
    root = fetch("ram_deepinv")
    monkeypatch.setattr(paper, "materialize", lambda name, *a, **k: root)
    prior = tiny_prior()
    ram = load_ram(resolve("ram_deepinv"), counter=prior)        # the checkpoint's entry routes to the paper loader
    assert isinstance(ram, PhysicsRAMWarmStart)
    saved = torch.load(root / "ram.pth.tar", weights_only=True)
    assert all(torch.equal(v, saved[k].float()) for k, v in ram.net.state_dict().items())

    op = physics.build_operator({"name": "gaussian_blur", "variance": 3.0, "kernel_size": 5}, (1, 16, 16), 0.01)
    g = torch.Generator().manual_seed(0)
    y = op.measure(torch.rand(2, 1, 16, 16, generator=g), g)
    x_t = torch.randn(2, 1, 16, 16, generator=g)
    t = 700
    with torch.no_grad():
        out = ram(x_t, t, y, op)
        M = torch.from_numpy(dense(op.A, (1, 16, 16))).float()
        a = float(prior.abar[t])
        s_t = (1 - a) ** 0.5 / 2
        m = min(0.01, s_t)
        w1, w2 = m / 0.01, m / s_t
        blur = lambda u, T: (u.reshape(len(u), -1) @ T).reshape(u.shape)
        P1 = dinv.physics.LinearPhysics(A=lambda u, **_: w1 * blur(u, M.T), A_adjoint=lambda u, **_: w1 * blur(u, M))
        P2 = dinv.physics.LinearPhysics(A=lambda u, **_: w2 * a ** 0.5 * u, A_adjoint=lambda u, **_: w2 * a ** 0.5 * u)
        stack = dinv.physics.StackedLinearPhysics([P1, P2])
        stack.noise_model = dinv.physics.GaussianNoise(m)
        ref = 2 * ram.net(TensorList([w1 * y, w2 * (x_t + a ** 0.5) / 2]), stack) - 1
    assert out.shape == x_t.shape and torch.allclose(out, ref, atol=1e-4)
    assert prior.nfe == 2 and prior.calls.summary() == {"RAM": 1}

    prior = tiny_prior()
    prior.ram = PhysicsRAMWarmStart(ram.net, counter=prior)
    x = ud2m.solve(y, op, prior, generator=torch.Generator().manual_seed(1), K=1, N=3, warm_start="ram")
    assert x.shape == (2, 1, 16, 16) and torch.isfinite(x).all()
    assert prior.nfe == 2 * (1 * 3 + 3) and prior.calls.summary() == {"denoiser": 3, "RAM": 3}

    path = tmp_path / "adapter.safetensors"
    sha = save_tensors({f"ram.{k}": v for k, v in ram.net.state_dict().items()}, path)
    copy = load_ram({"name": "an_adapter", "path": path, "sha256": sha})
    assert isinstance(copy, PhysicsRAMWarmStart)
    assert all(torch.equal(v, copy.net.state_dict()[k]) for k, v in ram.net.state_dict().items())


def test_the_fetch_stage_pins_the_commit_and_compute_jobs_run_offline(hub, tmp_path, monkeypatch):
    """The fetch stage's job for SD 1.5: the branch's commit is asked of the hub once and locked, every file
    fetched at that commit and hashed into the lock and the manifest. A compute job (IPBENCH_OFFLINE=1) then
    loads from those files alone, and stops naming the file when one is missing instead of downloading it."""
    monkeypatch.chdir(tmp_path)
    lock = tmp_path / "resources" / "checksums.lock"
    out = tmp_path / "resources" / "checkpoints" / "sd15" / "fetched.json"
    manifest = paper.fetch_manifest("sd15", out, endpoint=hub, lock_path=lock)
    locked = json.loads(lock.read_text())
    assert manifest["revision"] == COMMIT and locked["sd15@main"] == COMMIT
    assert set(manifest["files"]) == set(sc.checkpoint("sd15")["files"])
    assert all(locked[f"sd15/{f}"] == h for f, h in manifest["files"].items())
    assert json.loads(out.read_text()) == manifest
    monkeypatch.setenv("IPBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = paper.materialize("sd15", endpoint="http://127.0.0.1:9", lock_path=lock)    # nothing listens there
    prior = paper.load_sd15(root=root)
    _one_step(prior, consistency=False)
    (root / "vae" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"sd15/vae/config.json: .*vae/config.json is missing, and this job "
                                                r"runs offline: files are fetched by the fetch stage"):
        paper.materialize("sd15", endpoint="http://127.0.0.1:9", lock_path=lock)
    with pytest.raises(FileNotFoundError, match="no commit of openai/clip-vit-large-patch14@main is locked yet"):
        paper.materialize("clip_vit_l14", lock_path=lock)


def test_the_default_lock_is_outside_the_tracked_tree():
    """Runs record hashes and commits in resources/checksums.lock of their working directory (beside the fetched
    files), which git ignores in a checkout: a run stays clean."""
    import subprocess

    from ipbench.datasets.fetch import DEFAULT_LOCK
    assert DEFAULT_LOCK == Path("resources") / "checksums.lock"
    assert subprocess.run(["git", "check-ignore", "-q", str(DEFAULT_LOCK)], cwd=sc.ROOT).returncode == 0
    assert not (sc.ROOT / "config" / "checksums.lock").exists()


def _record_many(args):
    from ipbench.datasets.fetch import Lock
    path, worker = args
    for i in range(20):
        Lock(path).record(f"w{worker}/{i}", f"{worker}-{i}")


@pytest.mark.slow            # parallel processes (about 10 s)
def test_parallel_jobs_never_lose_a_lock_entry(tmp_path):
    """Eight processes recording 20 hashes each into one lock file (parallel fetch jobs): all 160 remain."""
    from multiprocessing import get_context
    path = tmp_path / "checksums.lock"
    with get_context("spawn").Pool(8) as pool:
        pool.map(_record_many, [(path, w) for w in range(8)])
    assert len(json.loads(path.read_text())) == 160


def test_lpips_vgg_loads_the_fetched_torchvision_file(tmp_path):
    """LPIPS-VGG's backbone comes from the fetched torchvision file (no download): each of its tensors is the
    file's ``features.<i>`` tensor of the same layer."""
    import torchvision
    from ipbench.metrics.lpips import LPIPS
    torch.manual_seed(0)
    state = torchvision.models.vgg16().state_dict()
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    lp = LPIPS(net="vgg", backbone_weights=str(path))
    own = lp.model.net.state_dict()
    assert len(own) == 26 and all(torch.equal(v, state[f"features.{k.split('.', 1)[1]}"]) for k, v in own.items())
    x = torch.rand(2, 3, 32, 32)
    assert lp(x, x).max() < 1e-6 and lp(x, x.flip(-1)).min() > 0


def test_the_paper_dag_fetches_every_checkpoint_before_compute():
    """The paper profile's DAG: each solve and score waits for the fetch stage's manifests of what it reads
    (ADM and RAM for UD2M+RAM; SDXL's three parts and CLIP for LATINO; CausVid, Wan, SDXL + DMD2 and VIDUE for
    LVTINO on Problem C; Inception, VGG and PIPs++ for scoring)."""
    cfg = sc.select({"profile": "paper"})
    assert sc.fetched_checkpoints(cfg, "ud2m_ram", "px_sr4") == ["adm_imagenet256_uncond", "ram_deepinv"]
    assert sc.fetched_checkpoints(cfg, "latino", "sr16") == ["sdxl_base", "dmd2_sdxl_4step_unet", "sdxl_vae_fp16_fix",
                                                             "clip_vit_l14"]   # the image tower every latent prior gets
    assert sc.fetched_checkpoints(cfg, "treg", "sr16") == ["sd15", "clip_vit_l14"]
    assert sc.fetched_checkpoints(cfg) == ["inception_clean_fid", "vgg16_torchvision", "pips2_fvmd"]
    assert "vidue_gopro" in sc.fetched_checkpoints(cfg, "lvtino", "problem_C")
    assert "vidue_gopro" not in sc.fetched_checkpoints(cfg, "lvtino", "problem_A")
    assert sc.fetched_checkpoints(cfg, "admm_tv", "sr16") == []


def test_checkpoints_load_in_the_official_dtype_and_solvers_see_float32(fetched, monkeypatch):
    """SD 1.5 loads in fp16 as TReg's official code (config/checkpoints.yaml `dtype`), SDXL + DMD2 in fp16 as
    LATINO's, ADM with guided-diffusion's fp16 torso; what the solvers get back is float32, and a gradient
    through the fp16 decoder reaches a float32 latent (PSLD's, LDPS's data step)."""
    fetch, _ = fetched
    assert [paper.dtype_of(n) for n in ("sd15", "sdxl_dmd2", "adm_imagenet256_uncond", "ram_deepinv")] == \
        [torch.float16, torch.float16, torch.float16, torch.float32]
    prior = paper.load_sd15(root=fetch("sd15"))
    assert prior.unet.dtype == prior.vae.dtype == torch.float16
    c = prior.embed(["a photo of a cat"])
    z = torch.randn(1, 4, 8, 8, requires_grad=True)
    eps, x = prior.eps(z, 500, c), prior.decode(z)
    assert c.dtype == eps.dtype == x.dtype == prior.encode(x.detach()).dtype == torch.float32
    x.sum().backward()
    assert z.grad.dtype == torch.float32 and torch.isfinite(z.grad).all()
    monkeypatch.setattr(paper, "checkpoint", lambda name: {**sc.checkpoint(name), "dtype": "half"})
    with pytest.raises(ValueError, match="dtype 'half' is not one of float32, float16, bfloat16"):
        paper.dtype_of("sd15")


def test_ud2m_lora_goes_on_adm_qkv_and_proj_out_and_starts_as_the_prior():
    """UD2M's adapter on an ADM (guided-diffusion's U-Net): LoRA on every attention block's ``qkv`` and
    ``proj_out`` as the official code, nothing else trainable, and an untrained adapter leaves eps unchanged
    (peft's B = 0)."""
    from ipbench.priors.guided_unet import GuidedUNet
    from ipbench.priors.lora import add_lora, lora_targets
    from ipbench.priors.pixel_ddpm import PixelDiffusionPrior
    torch.manual_seed(0)
    net = GuidedUNet(**TINY_GUIDED, out_channels=6)
    prior = PixelDiffusionPrior(net, "linear", adm=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = prior.eps(x, 500)
    assert lora_targets(net) == ("qkv", "proj_out")
    n_attention = sum(1 for name, m in net.named_modules() if name.endswith(".qkv"))
    params = add_lora(net)
    adapted = {name.rsplit(".lora_", 1)[0] for name, _ in net.named_parameters() if "lora_" in name}
    assert n_attention > 0 and len(adapted) == 2 * n_attention
    assert all(name.endswith((".qkv", ".proj_out")) for name in adapted)
    assert len(params) == 4 * n_attention and all(p.requires_grad for p in params)
    assert not any(p.requires_grad for name, p in net.named_parameters() if "lora_" not in name)
    with torch.no_grad():
        assert torch.allclose(prior.eps(x, 500), before, atol=1e-6)


def test_pin_writes_the_locked_commits_and_hashes_into_the_catalogue(tmp_path):
    """``python -m ipbench pin``: a run's locked commit and file hashes become the catalogue's own pins (the
    branch replaced by the commit, a sha256 per file), by a deliberate command; comments, order and every
    other value stay; pinning twice changes nothing; a lock that disagrees with a pin is refused."""
    import yaml
    from ipbench.store.catalog import CATALOGUE, pin
    path = tmp_path / "checkpoints.yaml"
    path.write_text(CATALOGUE.read_text())
    before = yaml.safe_load(path.read_text())
    sd15 = {f"sd15/{f}": f"{i:064x}" for i, f in enumerate(before["sd15"]["files"])}
    lock = {"sd15@main": COMMIT, **sd15, "adm_imagenet256_uncond/256x256_diffusion_uncond.pt": "ab" * 32,
            "clip_vit_l14@main": COMMIT}                                  # CLIP: commit locked, files not yet
    assert sorted(pin(lock, path)) == ["adm_imagenet256_uncond", "clip_vit_l14", "sd15"]
    after = yaml.safe_load(path.read_text())
    assert after["sd15"]["revision"] == COMMIT and after["sd15"]["sha256"] == {k[5:]: v for k, v in sd15.items()}
    assert after["adm_imagenet256_uncond"]["sha256"] == {"256x256_diffusion_uncond.pt": "ab" * 32}
    assert after["clip_vit_l14"]["revision"] == COMMIT and "sha256" not in after["clip_vit_l14"]
    for entry in ("sd15", "adm_imagenet256_uncond", "clip_vit_l14"):
        for k in ("revision", "sha256"):
            after[entry].pop(k, None), before[entry].pop(k, None)
    assert after == before
    text = path.read_text()
    assert text.startswith("# Weights the suite ships") and "dtype: float16   # TReg's official code" in text
    assert "  revision: '0123456789abcdef0123456789abcdef01234567'   # main when pinned\n" in text
    assert pin(lock, path) == {} and path.read_text() == text
    with pytest.raises(ValueError, match="other sha256s than the lock recorded"):
        pin({**lock, "sd15/unet/config.json": "cd" * 32}, path)
    with pytest.raises(ValueError, match="unknown checkpoint.s. sd16"):
        pin(lock, path, names=["sd16"])
