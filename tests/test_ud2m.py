"""UD2M's distillation pieces: LoRA adapters on the pixel denoiser, the trainer's gradients, the adapter files."""
import pytest
import torch

from ipbench import physics
from ipbench.methods import ud2m
from ipbench.priors.lora import add_lora, apply_adapter
from ipbench.priors.pixel_ddpm import PixelDiffusionPrior, build_unet
from ipbench.store.files import save_tensors
from ipbench.training.common import holdout
from ipbench.training.ud2m_distill import Discriminator, distill


def tiny_prior(seed=0):
    torch.manual_seed(seed)
    return PixelDiffusionPrior(build_unet(sample_size=16, block_out_channels=(8, 8, 8), norm_num_groups=4,
                                          attention_head_dim=4))


def test_an_untrained_adapter_is_the_prior_itself():
    plain, adapted = tiny_prior(), tiny_prior()
    params = add_lora(adapted.unet)
    assert params and all(p.requires_grad for p in params)
    assert not any(p.requires_grad for n, p in adapted.unet.named_parameters() if "lora_" not in n)
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([500, 500])
    with torch.no_grad():
        assert torch.allclose(plain.eps(x, t), adapted.eps(x, t), atol=1e-6)


def test_distillation_trains_lora_and_lambda_and_the_adapter_file_round_trips(tmp_path):
    prior = tiny_prior()
    op = physics.build_operator({"name": "downsampling", "factor": 4}, (1, 16, 16), 0.05)
    x = torch.rand(40, 1, 16, 16)
    tensors, card = distill(prior, op, x, K=2, steps=4, batch_size=4, lr=1e-2)
    lora_b = [v for k, v in tensors.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)            # gradients reached the adapter
    assert tensors["psi.lam"].item() != 1.0                               # and the learnt lambda
    assert card["K"] == 2 and card["final_d_avg100"] > 0
    from ipbench.training.ud2m_distill import model_card
    text = model_card({**card, "task": "sr4", "base": "pixel_ddpm", "base_sha256": "0" * 64, "n_train": 40,
                       "n_val": 2, "val_psnr_N3": 20.0, "val_psnr_untrained_N3": 19.0, "command": "python -m x"})
    assert "K = 2" in text and "20.00 dB distilled; 19.00 dB" in text
    path = tmp_path / "adapter.safetensors"
    sha = save_tensors(tensors, path, metadata={"card": __import__("json").dumps(card)})
    fresh = tiny_prior()
    psi, loaded = apply_adapter(fresh, path, sha)
    assert psi["lam"] == pytest.approx(tensors["psi.lam"].item()) and loaded["K"] == 2
    xt, t = torch.randn(2, 1, 16, 16), torch.tensor([300, 300])
    with torch.no_grad():
        assert torch.allclose(fresh.eps(xt, t), prior.eps(xt, t), atol=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        apply_adapter(PixelDiffusionPrior(build_unet(sample_size=16, block_out_channels=(8, 8, 16),
                                                     norm_num_groups=4, attention_head_dim=4)), path, sha)
    # an adapter distilled from another DDPM of the same architecture is refused, not silently applied
    card_b = {**card, "base": "pixel_ddpm", "base_sha256": "a" * 64}
    path_b = tmp_path / "adapter_b.safetensors"
    sha_b = save_tensors(tensors, path_b, metadata={"card": __import__("json").dumps(card_b)})
    other = tiny_prior()
    other.weights_sha256 = "b" * 64
    with pytest.raises(ValueError, match="distilled from the pixel DDPM 'pixel_ddpm' with sha256 aaaa"):
        apply_adapter(other, path_b, sha_b)
    other.weights_sha256 = "a" * 64
    assert apply_adapter(other, path_b, sha_b)[1]["base_sha256"] == "a" * 64


def test_bf16_distillation_autocasts_only_the_ddpm_and_restores_float32():
    """--bf16: the DDPM's forward passes under bfloat16 autocast during distillation (its output agrees with
    float32 to bfloat16 precision, and comes back float32); LoRA and lambda stay float32, the card records it,
    and the prior is float32 again afterwards (the solvers never see bfloat16)."""
    prior = tiny_prior()
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([500, 500])
    with torch.no_grad():
        ref = prior.eps(x, t)
        prior.bf16 = True
        low = prior.eps(x, t)
        prior.bf16 = False
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    assert torch.allclose(low, ref, atol=0.05 * ref.abs().max().item())
    op = physics.build_operator({"name": "downsampling", "factor": 4}, (1, 16, 16), 0.05)
    tensors, card = distill(prior, op, torch.rand(40, 1, 16, 16), K=2, steps=4, batch_size=4, lr=1e-2, bf16=True)
    assert card["precision"] == "bf16 autocast" and prior.bf16 is False
    assert all(v.dtype == torch.float32 for v in tensors.values())
    assert any(v.abs().sum() > 0 for k, v in tensors.items() if "lora_B" in k)
    with torch.no_grad():
        assert torch.equal(prior.eps(x, t), prior.unet(x, t).sample)      # float32 again, no autocast


def test_every_shipped_adapter_and_bridge_names_the_pinned_ddpm_it_came_from():
    """The base (init) sha256 in each shipped UD2M adapter's (I2SB bridge's) metadata is the sha256 that
    config/checkpoints.yaml pins for that DDPM: the file it was distilled (fine-tuned) from ships, and a
    retrained DDPM forces its adapters to be retrained (``apply_adapter`` refuses a mismatch)."""
    import json
    import yaml
    from safetensors import safe_open
    from ipbench.suite.config import CONFIG_DIR, ROOT, checkpoint
    entries = yaml.safe_load((CONFIG_DIR / "checkpoints.yaml").read_text())
    trained = {module: [k for k, v in entries.items() if v.get("train", {}).get("module") == module]
               for module in ("ipbench.training.ud2m_distill", "ipbench.training.bridge")}
    assert len(trained["ipbench.training.ud2m_distill"]) == 11 and len(trained["ipbench.training.bridge"]) == 4
    for module, names in trained.items():
        key = "base" if module == "ipbench.training.ud2m_distill" else "init"
        for name in names:
            with safe_open(str(ROOT / checkpoint(name)["path"]), "pt") as f:
                card = json.loads(f.metadata()["card"])
            assert card[f"{key}_sha256"] == checkpoint(card[key])["sha256"], name
            assert card[key] in checkpoint(name)["needs"], name



def test_discriminator_and_validation_split():
    D = Discriminator(size=16)
    assert D(torch.randn(3, 1, 16, 16), torch.randn(3, 1, 16, 16)).shape == (3,)
    x = torch.arange(100.0).view(100, 1, 1, 1)
    train, val = holdout(x)
    assert len(val) == 5 and len(train) == 95 and not set(val.flatten().tolist()) & set(train.flatten().tolist())


def test_solve_refuses_an_adapter_distilled_for_another_k(monkeypatch, tmp_path):
    prior = tiny_prior()
    add_lora(prior.unet)
    from ipbench.priors.lora import lora_state
    path = tmp_path / "a.safetensors"
    sha = save_tensors({**lora_state(prior.unet), "psi.lam": torch.ones(1)}, path,
                       metadata={"card": '{"K": 2}'})
    monkeypatch.setattr("ipbench.store.catalog.resolve", lambda name: {"name": name, "path": path, "sha256": sha})
    op = physics.build_operator({"name": "downsampling", "factor": 4}, (1, 16, 16), 0.05)
    y = op.measure(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match="distilled for K = 2"):
        ud2m.solve(y, op, tiny_prior(), K=3, N=1, adapter="x")


def test_w2_grid_cells_measure_nfe_and_the_table_sets_the_published_grid_beside(tmp_path):
    """One K of the MNIST grid on 8 test digits (plain prior, no adapter): NFE per image = K x N as counted
    by the prior; the table holds measured and published cells and marks a K without adapter."""
    from ipbench.suite import config as sc, stages, w2grid, io
    cfg = sc.select({"profile": "embedded"})
    cfg["w2_grids"]["mnist"].update(n_images=8, N=[1, 2], K=[1, 2], adapters={})
    degraded = tmp_path / "degraded.safetensors"
    stages.degrade(sc.w2_degrade_spec(cfg, "mnist"), str(degraded))
    cell = tmp_path / "K1.json"
    w2grid.cells(sc.w2_cell_spec(cfg, "mnist", 1), str(degraded), str(cell))
    rows = io.read_json(cell)["rows"]
    assert [r["nfe_per_image"] for r in rows] == [1, 2]
    assert all(r["w2"] >= 0 and r["psnr"] > 5 for r in rows)
    out = tmp_path / "table.md"
    w2grid.table(sc.w2_table_spec(cfg, "mnist"), [str(cell)], str(sc.ROOT / "report" / "paper_numbers.csv"), str(out))
    import re
    text = "\n".join(re.sub(r" {2,}", " ", line) for line in out.read_text().splitlines())   # tabulate's padding
    assert f"| 1 | {rows[0]['w2']:.2f} (6.91) | {rows[1]['w2']:.2f} (5.16) |" in text
    assert "| 2 | no adapter yet (3.65) | no adapter yet (2.25) |" in text
    assert "- K = 2: measured not enough cells; published falls at every step from N = 1 to 2 (3.65 -> 2.25)." in text
    grid = __import__("pandas").read_csv(out.with_suffix(".csv"))
    assert list(grid.K) == [1, 1, 2, 2] and grid.w2_published.tolist() == [6.91, 5.16, 3.65, 2.25]


def test_posterior_figure_draws_samples_mean_and_std(tmp_path, monkeypatch):
    from ipbench.suite import config as sc, stages, w2grid
    cfg = sc.select({"profile": "embedded"})
    cfg["w2_grids"]["mnist"].update(n_images=3)
    degraded = tmp_path / "degraded.safetensors"
    stages.degrade(sc.w2_degrade_spec(cfg, "mnist"), str(degraded))
    monkeypatch.setattr("ipbench.priors.lora.load_adapter", lambda prior, ck: ({"lam": 1.0}, {"K": 1}))
    monkeypatch.setattr("ipbench.store.catalog.resolve", lambda name: {"name": name})
    spec = {**sc.w2_cell_spec(cfg, "mnist", 1), "adapter": "stand-in",
            "figure": {"K": 1, "N": 2, "n_images": 2, "n_samples": 3}}
    out = tmp_path / "posterior.png"
    w2grid.posterior_figure(spec, str(degraded), str(out))
    assert out.stat().st_size > 1000


def test_ud2m_with_ram_trains_the_warm_start_jointly_and_counts_one_ram_call_per_step(monkeypatch, tmp_path):
    from ipbench.priors.ram import RAMWarmStart, build_net, load_ram
    torch.manual_seed(0)
    ram = RAMWarmStart(build_net(block_out_channels=(8, 8, 8), norm_num_groups=4))
    monkeypatch.setattr("ipbench.priors.ram.build_net", lambda: build_net(block_out_channels=(8, 8, 8), norm_num_groups=4))
    before = {k: v.clone() for k, v in ram.net.state_dict().items()}
    prior = tiny_prior()
    op = physics.build_operator({"name": "gaussian_blur", "variance": 3.0, "kernel_size": 5}, (1, 16, 16), 0.01)
    tensors, card = distill(prior, op, torch.rand(40, 1, 16, 16), K=2, steps=4, batch_size=4, lr=1e-2,
                            warm_start="ram", ram=ram)
    moved = [k for k, v in ram.net.state_dict().items() if not torch.equal(v, before[k])]
    assert moved and card["ram_lr_factor"] == 0.1 and card["warm_start"] == "ram"
    assert set(ram.net.state_dict()) == {k[4:] for k in tensors if k.startswith("ram.")}
    path = tmp_path / "ud2m_ram.safetensors"
    sha = save_tensors(tensors, path, metadata={"card": __import__("json").dumps(card)})
    monkeypatch.setattr("ipbench.store.catalog.resolve", lambda name: {"name": name, "path": path, "sha256": sha})
    fresh = tiny_prior()
    y = op.measure(torch.rand(3, 1, 16, 16), torch.Generator().manual_seed(0))
    x = ud2m.solve(y, op, fresh, generator=torch.Generator().manual_seed(1), K=2, N=3, adapter="ud2m_ram")
    assert x.shape == (3, 1, 16, 16) and torch.isfinite(x).all()
    assert fresh.nfe == 3 * (2 * 3 + 3)                                  # K N denoiser calls + N RAM calls, per image
    assert fresh.calls.summary() == {"denoiser": 6, "RAM": 3}
    for k, v in fresh.ram.net.state_dict().items():                      # the fine-tuned copy, not the start
        assert torch.equal(v, tensors[f"ram.{k}"])
    with pytest.raises(ValueError, match="needs a RAM network"):
        ud2m.solve(y, op, tiny_prior(), K=1, N=1, warm_start="ram")
    bad = tmp_path / "bad.safetensors"
    sha_bad = save_tensors({"w": torch.ones(2)}, bad)
    with pytest.raises(ValueError, match="holds no RAM network"):
        load_ram({"name": "bad", "path": bad, "sha256": sha_bad})


def test_ram_training_writes_weights_and_a_card_with_validation_per_task(monkeypatch, tmp_path):
    from ipbench.priors import ram
    from ipbench.training import ram as training
    monkeypatch.setattr(ram, "build_net", lambda: ram.UNet2DModel(**{**ram.CONFIG, "block_out_channels": (8, 8, 8),
                                                                       "norm_num_groups": 4}))
    monkeypatch.setattr(training, "build_net", ram.build_net)
    out = tmp_path / "ram.safetensors"
    training.main(["--steps", "3", "--batch-size", "4", "--tasks", "px_deblur_gaussian", "px_jpeg10", "--out", str(out)])
    text = out.with_suffix(".md").read_text()
    assert "python -m ipbench.training.ram --steps 3" in text and "| `px_jpeg10` |" in text and "| `px_sr4` |" not in text
    net = ram.build_net()
    from safetensors.torch import load_file
    net.load_state_dict(load_file(str(out)))


def test_official_warm_start_is_y_for_deblurring_and_the_blend_for_sr_and_inpainting():
    """The default f_psi is the official code's at training time (runner pitfall 3 of the reference): y on
    deblurring, and on SR / inpainting the blend of b (H^T up(y), resp. A^T y, in [-1, 1] units) with x_t,
    which is b at t -> T and sqrt(abar_t) x_t at sigma_t -> 0; the distillation card names the form it ran."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 16, 16, generator=g)
    blur = physics.build_operator({"name": "gaussian_blur", "variance": 3.0, "kernel_size": 5}, (1, 16, 16), 0.01)
    sr = physics.build_operator({"name": "downsampling", "factor": 4, "filter": "gaussian", "blur_variance": 3.0,
                                 "blur_size": 3, "padding": "circular"}, (1, 16, 16), 0.05)
    inp = physics.build_operator({"name": "inpainting", "keep": 0.3}, (1, 16, 16), 0.01)
    assert [ud2m.official_warm_start(op) for op in (blur, sr, inp)] == ["y", "blend", "blend"]
    y = blur.measure(x, g)
    assert torch.equal(ud2m.f_psi(y, blur), 2 * y.clamp(0, 1) - 1)
    abar = torch.linspace(0.9999, 1e-4, 1000, dtype=torch.float64)
    x_t = torch.randn(2, 1, 16, 16, generator=g, dtype=torch.float64)
    # inpainting: b = A^T y_pm = m (2 y - m); the blend's two weights have unit squared sum
    y = inp.measure(x.double(), g)
    m = inp.mask
    b = m * (2 * y - m)
    for t in (10, 500, 999):
        s, a = 2 * 0.01, abar[t]
        expect = (b * (1 - a).sqrt() + a.sqrt() * x_t * s) / (s**2 + 1 - a).sqrt()
        assert torch.allclose(ud2m.f_psi(y, inp, "official", x_t, t, abar=abar), expect, atol=1e-10)
    # SR: b = H^T bilinear_up(y_pm), H the filter before decimation (H then [::4] is A)
    y = sr.measure(x.double(), g)
    H = torch.stack([sr.filter_adjoint(e.view(1, 1, 16, 16)).flatten() for e in torch.eye(256, dtype=torch.float64)])
    up = torch.nn.functional.interpolate(2 * y - 1, size=(16, 16), mode="bilinear")
    a, s = torch.tensor(0.3, dtype=torch.float64), 2 * 0.05
    b = (up.flatten(1) @ H).view_as(x_t)
    assert torch.allclose(ud2m.blend(y, sr, x_t, a), (b * (1 - a).sqrt() + a.sqrt() * x_t * s) / (s**2 + 1 - a).sqrt(),
                          atol=1e-10)
    A = torch.stack([sr.A(e.view(1, 1, 16, 16)).flatten() for e in torch.eye(256, dtype=torch.float64)])
    assert torch.allclose(H.view(16, 16, 16, 16)[:, :, ::4, ::4].reshape(256, 16), A)   # decimating H gives A
    with pytest.raises(ValueError, match="valid: 'official', 'y', 'blend', 'pinv', 'ram'"):
        ud2m.f_psi(y, sr, "ram0")
    with pytest.raises(ValueError, match="needs a measurement of the image's size"):
        ud2m.f_psi(y.float(), sr, "y", x_t.float())
    _, card = distill(tiny_prior(), sr, x, K=1, steps=2, batch_size=2, lr=1e-2)
    assert card["warm_start"] == "blend"


def test_an_adapter_keeps_the_warm_start_it_was_distilled_with(monkeypatch, tmp_path):
    """Adapters distilled with A^dagger y ('pinv', the paper's form) keep it at sampling time."""
    op = physics.build_operator({"name": "downsampling", "factor": 4}, (1, 16, 16), 0.05)
    tensors, card = distill(tiny_prior(), op, torch.rand(8, 1, 16, 16), K=1, steps=2, batch_size=2, lr=1e-2,
                            warm_start="pinv")
    path = tmp_path / "a.safetensors"
    sha = save_tensors(tensors, path, metadata={"card": __import__("json").dumps(card)})
    monkeypatch.setattr("ipbench.store.catalog.resolve", lambda name: {"name": name, "path": path, "sha256": sha})
    lam, kind = ud2m.adapt(tiny_prior(), "a", 1)
    assert kind == "pinv" and lam == pytest.approx(card["lam"])


@pytest.mark.slow            # 256 x 256 images through a U-Net and a discriminator (about a minute)
def test_paper_distillation_runs_on_a_tiny_adm_replica_and_training_images(monkeypatch, tmp_path):
    """UD2M's ImageNet path (``--profile paper``): the paper task's operator at 256 x 256 on RGB training images
    read from a folder, LoRA on the ADM's ``qkv`` / ``proj_out`` (a random-weight replica of guided-diffusion's
    U-Net standing for the fetched ADM, which loads the same class), a discriminator on 6 channels; the adapter
    file and its card name the profile and the base's file hashes."""
    import json

    from PIL import Image
    from safetensors import safe_open

    import ipbench.priors.paper as paper
    import ipbench.suite.priors as suite_priors
    from ipbench.priors.guided_unet import GuidedUNet
    from ipbench.training import ud2m_distill
    images = tmp_path / "train" / "n01"
    images.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        arr = (torch.rand(64, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(images / f"im{i:02d}.JPEG", format="JPEG")
    torch.manual_seed(0)
    # ADM's layout at 256 x 256 (attention down to 16 x 16), 32 channels wide
    tiny = GuidedUNet(image_size=256, model_channels=32, num_res_blocks=1, attention_resolutions=(16,),
                      channel_mult=(1, 1, 1, 1, 1), num_head_channels=16, out_channels=6, use_fp16=True)
    monkeypatch.setattr(suite_priors, "load_prior", lambda kind, priors: PixelDiffusionPrior(tiny, "linear", adm=True))
    monkeypatch.setattr(ud2m_distill, "paper_lpips", lambda features, device="cpu": None)   # VGG: fetched
    monkeypatch.setattr(paper, "file_hashes", lambda name: {"256x256_diffusion_uncond.pt": "ab" * 32})
    out = tmp_path / "ud2m_px_sr4_k1.safetensors"
    ud2m_distill.main(["--profile", "paper", "--task", "px_sr4", "--images", str(tmp_path / "train"), "--K", "1",
                       "--steps", "2", "--batch-size", "2", "--n-train", "40", "--out", str(out)])
    with safe_open(str(out), "pt") as f:
        card = json.loads(f.metadata()["card"])
        keys = list(f.keys())
    assert card["profile"] == "paper" and card["base"] == "adm_imagenet256_uncond" and card["n_train"] == 38
    assert card["base_sha256"].startswith("256x256_diffusion_uncond.pt abab")
    assert any(".qkv." in k for k in keys) and any(".proj_out." in k for k in keys) and "psi.lam" in keys
    assert tiny.torso_dtype == torch.float32 and all(p.dtype == torch.float32 for p in tiny.parameters())
